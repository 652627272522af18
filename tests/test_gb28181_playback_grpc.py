"""gRPC device playback steered by its session (R1, R18): ``PullPlayback`` of a camera the gateway
holds no recording of plays from the GB/T 28181 simulator, its StreamInfo names the session, and
``ControlPlayback`` pauses, seeks and speeds it up with MANSRTSP; another registered platform, a
speed over the bound and an unknown session are refused. Real gRPC over loopback with mTLS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from gateway.cli import main as cli_main
from gateway.tools.pull import channel as client_channel
from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc

from .test_gb28181_signalling import sip, start_sim, until
from .test_policy_support import FAST_ARGON2

PLATFORM, OTHER = "police-image-platform", "other-platform"
FILE_SECONDS = 20
Control = pb.ControlPlaybackRequest


@pytest.fixture(scope="module")
def pki(tmp_path_factory):  # noqa: ANN001, ANN201
    folder = tmp_path_factory.mktemp("pki")
    assert cli_main(["grpc", "dev-pki", str(folder), "--client", PLATFORM, "--client", OTHER]) == 0
    return {path.name: path for path in folder.iterdir()}


def connect(gw, pki, cn: str) -> grpc.aio.Channel:  # noqa: ANN001
    return client_channel(f"127.0.0.1:{gw.grpc.port}", str(pki["ca.pem"]), str(pki[f"{cn}.pem"]),
                          str(pki[f"{cn}.key"]), None)


async def refused(call) -> grpc.StatusCode:  # noqa: ANN001
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_r1_grpc_device_playback_is_controlled_by_its_session_and_only_by_its_caller(make_gateway,
                                                                                          pki) -> None:  # noqa: ANN001
    gw = await make_gateway(
        sip=sip(), identity={**FAST_ARGON2, "clients": [f"{PLATFORM}=police:5", f"{OTHER}=police:5"]},
        grpc={"enabled": True, "port": 0, "cert": str(pki["server.pem"]), "key": str(pki["server.key"]),
              "client_ca": str(pki["ca.pem"])})
    sim = await start_sim(gw, honour_mansrtsp=True)
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    req = pb.PullPlaybackRequest(camera_id=cid, speed=1)
    req.start.FromDatetime(start)
    req.end.FromDatetime(start + timedelta(seconds=FILE_SECONDS))
    try:
        async with connect(gw, pki, PLATFORM) as ch, connect(gw, pki, OTHER) as other_ch:
            streams, others = rpc.StreamServiceStub(ch), rpc.StreamServiceStub(other_ch)
            call = streams.PullPlayback(req)
            first = await call.read()
            assert first.WhichOneof("body") == "info" and first.info.codec == "h264"
            session = first.info.playback_session
            assert session in gw.sessions.open and gw.sessions.open[session].kind == "playback"
            assert (await call.read()).WhichOneof("body") == "unit"

            reply = await streams.ControlPlayback(Control(session=session, action=Control.PAUSE))
            assert reply.paused and reply.session == session
            infos = [e[2] for e in sim.received if e[0] == "INFO"]
            assert infos[-1].startswith("PAUSE MANSRTSP/1.0")

            assert await refused(others.ControlPlayback(Control(session=session, action=Control.RESUME))) \
                == grpc.StatusCode.PERMISSION_DENIED
            assert await refused(streams.ControlPlayback(Control(session=session, action=Control.SPEED, speed=64))) \
                == grpc.StatusCode.INVALID_ARGUMENT
            assert await refused(streams.ControlPlayback(Control(session="nope", action=Control.PAUSE))) \
                == grpc.StatusCode.NOT_FOUND
            outside = Control(session=session, action=Control.SEEK)
            outside.time.FromDatetime(start - timedelta(minutes=1))
            assert await refused(streams.ControlPlayback(outside)) == grpc.StatusCode.PERMISSION_DENIED
            assert len([e for e in sim.received if e[0] == "INFO"]) == len(infos)  # none of those reached it

            reply = await streams.ControlPlayback(Control(session=session, action=Control.SEEK,
                                                          offset=FILE_SECONDS - 2, speed=4))
            assert not reply.paused and reply.speed == 4 and reply.offset == FILE_SECONDS - 2
            infos = [e[2] for e in sim.received if e[0] == "INFO"]
            assert f"Range: npt={FILE_SECONDS - 2}-" in infos[-1] and "Scale: 4.00" in infos[-1]
            units = 0
            async with asyncio.timeout(10):  # 2 s of file at 4x, then the device's end of file ends the call
                while (message := await call.read()) is not grpc.aio.EOF:
                    units += message.WhichOneof("body") == "unit"
            assert units >= 5 and await call.code() == grpc.StatusCode.OK
        assert session not in gw.sessions.open
    finally:
        await sim.stop()
