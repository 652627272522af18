"""H.265 cameras on the wall (R1): a browser that offers H.265 gets the camera's own payloads
(RFC 7798, no transcoding); one that does not gets one shared H.264 transcode per camera, or with
``[webrtc] h265 = "refuse"`` a refusal that says why. Real WHEP over loopback with aiortc
clients that decode what they receive and check the picture (top red, bottom blue)."""

from __future__ import annotations

import asyncio

import aiohttp
import av
import pytest

from gateway.config import ConfigError
from gateway.egress.webrtc.client import WhepClient
from gateway.egress.webrtc.compat import h265_depayload
from gateway.egress.webrtc.config import WebRtcConfig
from gateway.egress.webrtc.packetize import packetize
from gateway.egress.webrtc.whep import EGRESS
from gateway.media import H265, stream_key
from gateway.media.nal import nal_type, split_annexb
from tests.conftest import TOKEN, auth
from tests.h265_camera import H265Camera, gop, looks_right

WEBRTC = {"host_addresses": ["127.0.0.1"]}


async def start(make_gateway, *, report_codec: bool = True, **webrtc):  # noqa: ANN001, ANN003, ANN201
    gw = await make_gateway(webrtc={**WEBRTC, **webrtc}, media={"linger": 0.05})
    camera = H265Camera(report_codec=report_codec)
    gw.add_adapter(camera)
    await camera.start(gw.registry.context(camera))
    return gw, camera


def whep_url(gw, cid: str = "hevc-1") -> str:  # noqa: ANN001
    return f"http://127.0.0.1:{gw.http_port}/api/whep/{cid}"


async def pictures(client: WhepClient, count: int = 10, timeout: float = 20) -> av.VideoFrame:
    """Waits for ``count`` decoded frames; returns the last one."""
    return await asyncio.wait_for(client.wait_frames(count), timeout)


def test_r1_h265_rtp_payloads_follow_rfc7798_and_decode_to_the_same_picture() -> None:
    """Parameter sets aggregated (AP, type 48), large NAL units fragmented (FU, type 49) within the
    payload size; depayloaded, the access units decode to the camera's picture."""
    units = gop(640, 480, frames=10)
    decoder = av.CodecContext.create("hevc", "r")
    kinds: set[int] = set()
    frames = []
    for unit in units:
        frame = packetize(unit, 300)
        assert frame.codec == H265 and all(len(p) <= 300 for p in frame.payloads)
        kinds |= {(p[0] >> 1) & 0x3F for p in frame.payloads}
        data = b"".join(h265_depayload(p) for p in frame.payloads)
        assert split_annexb(data) == split_annexb(unit.data)
        packet = av.Packet(data)
        packet.pts = unit.pts
        frames += decoder.decode(packet)
    assert {48, 49} <= kinds
    ap = packetize(units[0], 300).payloads[0]
    assert (ap[0] >> 1) & 0x3F == 48 and [nal_type(H265, n) for n in units[0].params] == [32, 33, 34]
    assert len(frames) == len(units) and all(looks_right(f.to_ndarray(format="rgb24")) for f in frames)


async def test_r1_h265_camera_passes_through_to_a_client_that_offers_h265(make_gateway) -> None:  # noqa: ANN001
    gw, _ = await start(make_gateway)
    client = WhepClient(whep_url(gw), TOKEN, h265=True)
    async with aiohttp.ClientSession() as http:
        try:
            resp = await client.connect(http)
            assert resp.status == 201, await resp.text()
            assert resp.headers["X-Vsgw-Video"] == "h265"
            answer = client.pc.remoteDescription.sdp
            offered = [line for line in client.pc.localDescription.sdp.splitlines() if "profile-id" in line]
            assert "H265/90000" in answer and offered and offered[0] in answer.splitlines()
            frame = await pictures(client)
            assert (frame.width, frame.height) == (320, 240)
            assert looks_right(frame.to_ndarray(format="rgb24"))
            fan = gw.app[EGRESS].fanouts["hevc-1"]
            assert fan.codec == H265 and not fan.transcoding
            assert gw.metrics.value("vsgw_webrtc_transcodes_total", camera="hevc-1") == 0
            assert gw.metrics.value("vsgw_webrtc_rejected_total", reason="codec") == 0
        finally:
            await client.close(http)


async def test_r1_h265_camera_is_transcoded_once_for_all_its_h264_viewers(make_gateway, caplog) -> None:  # noqa: ANN001
    """Two H.264-only viewers and one H.265 viewer of one H.265 camera: one transcode (a second hub
    reader) serves both H.264 viewers the right picture, the H.265 viewer still gets passthrough;
    the transcode stops with its last viewer."""
    gw, _ = await start(make_gateway)
    h264 = [WhepClient(whep_url(gw), TOKEN) for _ in range(2)]
    native = WhepClient(whep_url(gw), TOKEN, h265=True)
    caplog.set_level("INFO", logger="gateway.egress.webrtc.fanout")
    async with aiohttp.ClientSession() as http:
        try:
            for client in h264:
                resp = await client.connect(http)
                assert resp.status == 201, await resp.text()
                assert "H265" not in client.pc.remoteDescription.sdp
            resp = await native.connect(http)
            assert resp.status == 201 and resp.headers["X-Vsgw-Video"] == "h265"
            for client in [*h264, native]:
                frame = await pictures(client)
                assert (frame.width, frame.height) == (320, 240)
                assert looks_right(frame.to_ndarray(format="rgb24"))
            assert gw.metrics.value("vsgw_webrtc_transcodes_total", camera="hevc-1") == 1
            stream = gw.hub.stream(stream_key("hevc-1"))
            assert sorted(r.name for r in stream.readers) == ["webrtc", "webrtc-h264"]
            assert any("transcoding H.265 to H.264" in r.getMessage() for r in caplog.records)
            async with http.get(f"http://127.0.0.1:{gw.http_port}{h264[0].location}", headers=auth()) as r:
                assert (await r.json())["video"] == "h264; transcoded-from=h265"
            for client in h264:
                await client.close(http)
            fan = gw.app[EGRESS].fanouts["hevc-1"]
            assert not fan.transcoding and [r.name for r in stream.readers] == ["webrtc"]
        finally:
            for client in [*h264, native]:
                await client.close(http)


async def test_r1_h265_refused_by_config_answers_415_with_the_reason(make_gateway) -> None:  # noqa: ANN001
    gw, camera = await start(make_gateway, h265="refuse")
    client = WhepClient(whep_url(gw), TOKEN)
    async with aiohttp.ClientSession() as http:
        try:
            resp = await client.connect(http)
            assert resp.status == 415
            assert resp.headers["X-Vsgw-Reason"] == "h265_refused"
            body = await resp.json()
            assert body["error"] == "h265_refused" and "H.265" in body["message"] and "refuse" in body["message"]
            assert gw.metrics.value("vsgw_webrtc_rejected_total", reason="h265_refused") == 1
            assert camera.opened == 0  # refused before any reader was opened
            assert not gw.sessions.open
        finally:
            await client.close(http)
        passthrough = WhepClient(whep_url(gw), TOKEN, h265=True)  # a browser with H.265 is still served
        try:
            resp = await passthrough.connect(http)
            assert resp.status == 201
            assert looks_right((await pictures(passthrough, 3)).to_ndarray(format="rgb24"))
        finally:
            await passthrough.close(http)


async def test_r1_h265_learnt_after_the_answer_ends_a_refused_session_saying_why(make_gateway) -> None:  # noqa: ANN001
    """The channel does not announce its codec: the viewer is answered, and when the first access
    unit shows H.265 its session ends; its Location then says why."""
    gw, camera = await start(make_gateway, report_codec=False, h265="refuse")
    camera.hold = asyncio.Event()
    client = WhepClient(whep_url(gw), TOKEN)
    async with aiohttp.ClientSession() as http:
        try:
            loop = asyncio.get_running_loop()
            connected, ended = loop.create_future(), loop.create_future()

            @client.pc.on("connectionstatechange")
            def _state() -> None:
                if client.pc.connectionState == "connected" and not connected.done():
                    connected.set_result(True)
                if client.pc.connectionState in ("closed", "failed") and not ended.done():
                    ended.set_result(client.pc.connectionState)

            resp = await client.connect(http)
            assert resp.status == 201 and "X-Vsgw-Video" not in resp.headers
            base = f"http://127.0.0.1:{gw.http_port}"
            await asyncio.wait_for(connected, 20)
            camera.hold.set()
            assert await asyncio.wait_for(ended, 20) == "closed"  # the gateway closed it (DTLS close)
            async with http.get(base + client.location, headers=auth()) as r:
                assert r.status == 200
                status = await r.json()
            assert status["state"] == "ended" and status["error"] == "h265_refused"
            assert "H.265" in status["message"]
            assert gw.metrics.value("vsgw_webrtc_rejected_total", reason="h265_refused") == 1
            assert not client.frames
            async with http.get(base + client.location, headers={"Authorization": "Bearer nobody"}) as r:
                assert r.status == 401
        finally:
            await client.close()


def test_webrtc_h265_mode_is_validated() -> None:
    assert WebRtcConfig().h265 == "transcode"
    with pytest.raises(ConfigError, match="webrtc.h265: expected one of transcode, refuse"):
        WebRtcConfig(h265="vp8")
