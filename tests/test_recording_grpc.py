"""The police platform's gRPC ``PullPlayback`` (real gRPC over loopback with mTLS) plays this
gateway's recordings: the units it streams are the recorded pictures, in order, and decode."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import av

from gateway.egress.grpc.certs import write_dev_pki
from gateway.policy import Subject
from gateway.recording.web import PART
from gateway.tools.pull import channel as client_channel
from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc
from tests.conftest import synthetic
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")

CLIENT = "police-image-platform"


async def test_grpc_pull_playback_returns_the_recorded_frames(make_gateway, tmp_path) -> None:  # noqa: ANN001
    pki = write_dev_pki(tmp_path / "pki", clients=(CLIENT,))
    gw = await make_gateway(
        cameras=[synthetic("rec-1")],
        recording={"cameras": ["rec-1"], "segment_seconds": 1.0, "fsync": False},
        grpc={"enabled": True, "port": 0, "cert": str(pki["server.pem"]), "key": str(pki["server.key"]),
              "client_ca": str(pki["ca.pem"])},
    )
    gw.certificate_subject = lambda cn: Subject(id=f"cert:{cn}", kind="client", name=cn, tier="police", clearance=9,
                                                roles=frozenset({"platform"})) if cn == CLIENT else None
    part = gw.app[PART]
    deadline = asyncio.get_running_loop().time() + 20
    while part.recorder.counters["segments"] < 2:
        assert asyncio.get_running_loop().time() < deadline, "nothing recorded"
        await asyncio.sleep(0.1)
    (first, last), = await gw.recordings.ranges("rec-1", datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC))
    start, end = first, first + timedelta(seconds=1.5)
    recorded = [u async for u in await gw.recordings.open_playback(TEST_READER, "rec-1", start, end, 0)]

    req = pb.PullPlaybackRequest(camera_id="rec-1", speed=16)
    req.start.FromDatetime(start)
    req.end.FromDatetime(end)
    async with client_channel(f"127.0.0.1:{gw.grpc.port}", str(pki["ca.pem"]), str(pki[f"{CLIENT}.pem"]),
                              str(pki[f"{CLIENT}.key"]), None) as ch:
        messages = [m async for m in rpc.StreamServiceStub(ch).PullPlayback(req)]
    info = [m.info for m in messages if m.WhichOneof("body") == "info"]
    units = [m.unit for m in messages if m.WhichOneof("body") == "unit"]
    assert info and info[0].codec == "h264"
    assert [u.data for u in units] == [u.data for u in recorded] and len(units) >= 30
    assert units[0].keyframe and all(b.dts > a.dts for a, b in zip(units, units[1:]))
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for u in units for f in decoder.decode(av.Packet(u.data))] + list(decoder.decode(None))
    assert len(frames) == len(units) and (frames[0].width, frames[0].height) == (320, 240)
