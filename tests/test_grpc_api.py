"""gRPC API for the police image platform (R1, R2, R18): real gRPC over loopback with mTLS,
certificates generated per test run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
import subprocess
import sys

import av
import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from adapters.base import Adapter, Channel, PtzCommand
from gateway.cli import main as cli_main
from gateway.media import AccessUnit
from gateway.tools.pull import channel as client_channel
from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc
from tests.conftest import TOKEN, synthetic
from tests.people import trail

CLIENT = "police-image-platform"


class PtzRecorder(Adapter):
    """A test adapter whose one channel has PTZ and records the commands it gets."""

    kind = "ptz-test"

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[PtzCommand] = []

    async def start(self, ctx) -> None:  # noqa: ANN001
        await super().start(ctx)
        ctx.channel_seen(Channel("dome-1", "Dome 1", self.kind, online=True, ptz=True))

    def channels(self) -> list[Channel]:
        return [Channel("dome-1", "Dome 1", self.kind, online=True, ptz=True)]

    def open(self, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        raise ConnectionError("no video in this test adapter")

    async def ptz(self, channel_id: str, command: PtzCommand) -> None:
        self.commands.append(command)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001
    """Made by ``vsgw grpc dev-pki``, as a developer would."""
    folder = tmp_path_factory.mktemp("pki")
    assert cli_main(["grpc", "dev-pki", str(folder), "--client", CLIENT, "--client", "stranger"]) == 0
    return {path.name: path for path in folder.iterdir()}


@pytest_asyncio.fixture
async def gw(make_gateway, pki):  # noqa: ANN001, ANN201
    cams = [synthetic("cam-1", name="East Gate 东门"), synthetic("cam-2", name="Square"), synthetic("cam-3")]
    gateway = await make_gateway(
        cameras=cams,
        grpc={"enabled": True, "port": 0, "cert": str(pki["server.pem"]), "key": str(pki["server.key"]),
              "client_ca": str(pki["ca.pem"])},
        identity={"clients": [f"{CLIENT}=police:5"]},  # the platform's certificate is registered; "stranger" is not
    )
    return gateway


def connect(gw, pki, cn: str | None = CLIENT, token: str | None = None, **options: object) -> grpc.aio.Channel:  # noqa: ANN001
    return client_channel(f"127.0.0.1:{gw.grpc.port}", str(pki["ca.pem"]),
                          str(pki[f"{cn}.pem"]) if cn else None, str(pki[f"{cn}.key"]) if cn else None, token,
                          [(f"grpc.{k}", v) for k, v in options.items()])


async def test_r1_platform_lists_pages_and_gets_cameras_over_mtls(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki) as ch:
        stub = rpc.CameraServiceStub(ch)
        first = await stub.ListCameras(pb.ListCamerasRequest(page_size=2))
        assert [c.id for c in first.cameras] == ["cam-1", "cam-2"] and first.next_page_token
        rest = await stub.ListCameras(pb.ListCamerasRequest(page_size=2, page_token=first.next_page_token))
        assert [c.id for c in rest.cameras] == ["cam-3"] and not rest.next_page_token
        found = await stub.ListCameras(pb.ListCamerasRequest(text="东门"))
        assert [c.name for c in found.cameras] == ["East Gate 东门"]
        cam = await stub.GetCamera(pb.GetCameraRequest(camera_id="cam-2"))
        assert (cam.id, cam.adapter, cam.online) == ("cam-2", "synthetic", True)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetCamera(pb.GetCameraRequest(camera_id="nope"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in err.value.details()


async def test_r18_client_without_certificate_is_refused(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki, cn=None) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake itself fails


async def test_r18_bad_token_and_unregistered_certificate_are_unauthenticated(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki, token="not-a-token") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with connect(gw, pki, cn="stranger") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "stranger" in err.value.details()
    async with connect(gw, pki, token=TOKEN) as ch:  # a valid token works alongside the certificate
        assert len((await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())).cameras) == 3
    assert gw.metrics.value("vsgw_grpc_rejected_total", reason="bad_token") == 1


async def test_r2_gate_refuses_a_camera_above_the_platforms_clearance(gw, pki) -> None:  # noqa: ANN001
    base = gw.resource_resolver
    gw.resource_resolver = lambda cid: replace(base(cid), security_level=4 if cid == "cam-1" else 0)
    await gw.identity.add_client("stranger", "sharing", 2, None)  # a sharing-tier platform, clearance 2
    async with connect(gw, pki, cn="stranger") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-1")):
                pass
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "clearance 2 is below security level 4" in err.value.details()
        listed = await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())
        assert [c.id for c in listed.cameras] == ["cam-2", "cam-3"]
    async with connect(gw, pki) as ch:  # the police platform (clearance 5) sees and pulls it
        call = rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-1"))
        assert (await call.read()).info.codec == "h264"
        call.cancel()


async def test_r2_policy_denial_is_permission_denied_with_its_reason(gw, pki) -> None:  # noqa: ANN001
    """The registered platform lowered to clearance 1 is refused every level-3 camera by the real
    gate: PullLive is PERMISSION_DENIED with the gate's reason, the list is empty, the trail says so."""
    base = gw.resource_resolver
    gw.resource_resolver = lambda cid: replace(base(cid), security_level=3)
    await gw.identity.add_client(CLIENT, "police", 1, None)
    async with connect(gw, pki) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-1")):
                pass
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "clearance 1 is below security level 3" in err.value.details()
        assert (await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())).cameras == []
    (row,) = await trail(gw, action="pull_stream")
    assert (row.actor, row.resource, row.decision, row.extra["egress"]) == (
        f"cert:{CLIENT}", "camera:cam-1", "deny", "grpc")
    assert row.reason in err.value.details()


async def test_pull_live_starts_at_keyframe_and_decodes_at_source_resolution(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki) as ch:
        call = rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-1"))
        messages = []
        async for msg in call:
            messages.append(msg)
            if len(messages) == 26:
                break
        call.cancel()
    info, units = messages[0].info, [m.unit for m in messages[1:]]
    assert info.codec == "h264" and len(info.parameter_sets) == 2 and (info.width, info.height) == (320, 240)
    assert units[0].keyframe and units[0].capture_time.seconds > 0
    ctx = av.CodecContext.create("h264", "r")
    frames = [f for u in units for p in ctx.parse(u.data) for f in ctx.decode(p)]
    assert len(frames) >= 20 and {(f.width, f.height) for f in frames} == {(320, 240)}


async def test_slow_client_skips_to_keyframes_and_does_not_slow_a_fast_client(gw, pki) -> None:  # noqa: ANN001
    gw.reader_limits.max_delay = 0.5
    # the stalled client keeps HTTP/2's default 64 KiB window (no BDP growth), so it stalls soon
    async with connect(gw, pki) as fast_ch, connect(gw, pki, **{"http2.bdp_probe": 0}) as slow_ch:
        slow = rpc.StreamServiceStub(slow_ch).PullLive(pb.PullLiveRequest(camera_id="cam-2"))
        await slow.read()  # info; then it stops reading
        fast = rpc.StreamServiceStub(fast_ch).PullLive(pb.PullLiveRequest(camera_id="cam-2"))
        loop = asyncio.get_running_loop()
        dts = []
        started = loop.time()
        async for msg in fast:
            if msg.HasField("unit"):
                dts.append(msg.unit.dts)
            if len(dts) == 75:
                break
        elapsed = loop.time() - started
        fast.cancel()
        readers = [r for r in gw.hub.streams["cam-2"].readers]
        skips = sum(r.skips for r in readers)
        held = max(r.buffered_bytes for r in readers)
        slow.cancel()
        deadline = loop.time() + 5
        while gw.metrics.value("vsgw_grpc_reader_skips_total", stream="cam-2") < skips:
            assert loop.time() < deadline, "the skips never reached the metrics"
            await asyncio.sleep(0.02)
    steps = {b - a for a, b in zip(dts, dts[1:])}
    assert steps == {3600}, "the fast client received every picture"
    assert elapsed < 4.5, f"75 pictures at 25 fps took {elapsed:.1f} s"
    assert skips >= 1, "the stalled client skipped ahead instead of buffering without bound"
    assert held <= 0.5 * 300_000 / 8 * 2, f"a reader held {held} bytes: more than its 0.5 s bound allows"


async def test_playback_without_recordings_or_device_support_is_refused_clearly(gw, pki) -> None:  # noqa: ANN001
    start = datetime(2026, 1, 2, tzinfo=UTC)
    req = pb.PullPlaybackRequest(camera_id="cam-1")
    req.start.FromDatetime(start)
    req.end.FromDatetime(start.replace(hour=1))

    async def refusal() -> grpc.aio.AioRpcError:
        async with connect(gw, pki) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in rpc.StreamServiceStub(ch).PullPlayback(req):
                    pass
        return err.value

    err = await refusal()  # the recording part holds nothing for cam-1, the synthetic device has no playback
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "no recording of 'cam-1'" in err.details() and "synthetic channels have no playback" in err.details()
    gw.recordings = None  # a gateway without the recording part
    err = await refusal()
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "cannot play back" in err.details()


async def test_r18_token_only_server_refuses_calls_without_a_token(make_gateway, pki) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("cam-9")], grpc={
        "enabled": True, "port": 0, "cert": str(pki["server.pem"]), "key": str(pki["server.key"]),
        "require_client_cert": False})
    async with connect(gw, pki, cn=None) as ch:  # TLS without a client certificate
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "token" in err.value.details()
    async with connect(gw, pki, cn=None, token=TOKEN) as ch:
        assert [c.id for c in (await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())).cameras] == ["cam-9"]
    assert gw.metrics.value("vsgw_grpc_rejected_total", reason="unauthenticated") == 1


async def test_ptz_calls_reach_the_adapter_and_cameras_without_ptz_refuse(gw, pki) -> None:  # noqa: ANN001
    adapter = PtzRecorder()
    gw.add_adapter(adapter)
    await adapter.start(gw.registry.context(adapter))
    async with connect(gw, pki) as ch:
        ptz = rpc.PtzServiceStub(ch)
        await ptz.Move(pb.MoveRequest(camera_id="dome-1", pan=0.5, tilt=-0.25))
        await ptz.Stop(pb.StopRequest(camera_id="dome-1"))
        await ptz.GotoPreset(pb.PresetRequest(camera_id="dome-1", preset=3))
        await ptz.SetPreset(pb.PresetRequest(camera_id="dome-1", preset=4))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ptz.Move(pb.MoveRequest(camera_id="dome-1", pan=3))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "pan" in err.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ptz.Stop(pb.StopRequest(camera_id="cam-1"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert adapter.commands == [
        PtzCommand(pan=0.5, tilt=-0.25), PtzCommand(), PtzCommand(preset=3, preset_action="goto"),
        PtzCommand(preset=4, preset_action="set"),
    ]
    assert gw.metrics.value("vsgw_grpc_rejected_total", reason="invalid_argument") == 1


async def test_snapshot_is_a_jpeg_of_the_source_size(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki) as ch:
        snap = await rpc.StreamServiceStub(ch).GetSnapshot(pb.GetSnapshotRequest(camera_id="cam-3"))
    assert snap.jpeg[:2] == b"\xff\xd8" and (snap.width, snap.height) == (320, 240)
    assert av.open(__import__("io").BytesIO(snap.jpeg)).streams.video[0].codec_context.width == 320


async def test_watch_cameras_streams_offline_and_online(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki) as ch:
        call = rpc.CameraServiceStub(ch).WatchCameras(pb.WatchCamerasRequest())

        async def change() -> None:  # once the server-side subscription exists
            while not any(s.prefixes == ("channel.",) for s in gw.bus._subs):
                await asyncio.sleep(0.01)
            gw.registry.state("cam-1", False, "keepalive timeout")
            gw.registry.state("cam-1", True)

        task = asyncio.ensure_future(change())
        events = [await call.read(), await call.read()]
        call.cancel()
        await task
    assert [(e.kind, e.camera_id, e.reason) for e in events] == [
        (pb.CameraEvent.OFFLINE, "cam-1", "keepalive timeout"), (pb.CameraEvent.ONLINE, "cam-1", "")]


async def test_health_and_reflection_serve_standard_tooling(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki) as ch:
        status = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="vsgw.v1.StreamService"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = stub.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        reply = await call.read()
        await call.done_writing()
    names = {s.name for s in reply.list_services_response.service}
    assert {"vsgw.v1.CameraService", "vsgw.v1.StreamService", "vsgw.v1.PtzService", "grpc.health.v1.Health"} <= names


async def test_malformed_requests_are_invalid_argument_and_counted(gw, pki) -> None:  # noqa: ANN001
    async with connect(gw, pki) as ch:
        cams, streams = rpc.CameraServiceStub(ch), rpc.StreamServiceStub(ch)
        for call in (cams.ListCameras(pb.ListCamerasRequest(page_size=5000)),
                     cams.ListCameras(pb.ListCamerasRequest(page_token="%%%")),
                     cams.GetCamera(pb.GetCameraRequest())):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        start = datetime(2026, 1, 2, tzinfo=UTC)
        req = pb.PullPlaybackRequest(camera_id="cam-1", speed=1)
        req.start.FromDatetime(start)
        req.end.FromDatetime(start)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in streams.PullPlayback(req):
                pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "end" in err.value.details()
        for method, reply in (("CameraService/GetCamera", pb.Camera), ("StreamService/PullLive", pb.MediaMessage)):
            raw = (ch.unary_stream if method.endswith("PullLive") else ch.unary_unary)(
                f"/vsgw.v1.{method}", request_serializer=bytes, response_deserializer=reply.FromString)
            with pytest.raises(grpc.aio.AioRpcError) as err:  # not protobuf at all
                call = raw(b"\xff\xff\xff")
                await (call.read() if method.endswith("PullLive") else call)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid protobuf" in err.value.details()
        # the server keeps serving
        assert len((await cams.ListCameras(pb.ListCamerasRequest())).cameras) == 3
    assert gw.metrics.value("vsgw_grpc_rejected_total", reason="invalid_argument") == 4
    assert gw.metrics.value("vsgw_grpc_rejected_total", reason="malformed") == 2


async def test_pull_tool_writes_a_file_ffprobe_reads(gw, pki, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "clip.ts"
    tool = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.tools.pull", "cam-1", "--out", str(out), "--seconds", "1",
        "--target", f"127.0.0.1:{gw.grpc.port}", "--ca", str(pki["ca.pem"]), "--cert", str(pki[f"{CLIENT}.pem"]),
        "--key", str(pki[f"{CLIENT}.key"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(tool.communicate(), 30)
    assert tool.returncode == 0, stderr.decode()
    assert stdout.decode().startswith("wrote ")
    probe = await asyncio.to_thread(subprocess.run, ["/usr/bin/ffprobe", "-v", "error", "-count_packets", "-show_entries",
                                    "stream=codec_name,width,height,nb_read_packets", "-of", "csv=p=0", str(out)],
                                    capture_output=True, text=True, check=True)
    (line,) = set(probe.stdout.split())  # the stream, listed once more under the TS program
    codec, width, height, packets = line.split(",")
    assert (codec, width, height) == ("h264", "320", "240") and int(packets) >= 25


def test_generated_stubs_match_the_contract(tmp_path) -> None:  # noqa: ANN001
    from proto.generate import ROOT, generate

    for fresh in generate(tmp_path):
        committed = ROOT / "vsgw" / "v1" / fresh.name
        assert committed.read_text() == fresh.read_text(), f"{committed} is stale: run python -m proto.generate"
    assert sys.modules["proto.vsgw.v1.vsgw_pb2"].DESCRIPTOR.package == "vsgw.v1"
