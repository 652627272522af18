"""GB/T 28181 audio end to end (R1): the simulator sends a 1 kHz G.711A tone in its PS beside the
pictures; a WHEP client (aiortc) receives and decodes both, and the tone's pitch comes through; gRPC
PullLive carries the audio units marked as audio with their codec."""

from __future__ import annotations

import asyncio

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
import numpy as np
import pytest

from adapters.gb28181.simaudio import TONE_HZ
from adapters.gb28181.simulator import SimConfig, Simulator
from gateway.cli import main as cli_main
from gateway.egress.webrtc.whep import EGRESS
from gateway.tools.pull import channel as client_channel
from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc
from tests.conftest import TOKEN

from .test_gb28181_signalling import sip, until

WEBRTC = {"host_addresses": ["127.0.0.1"]}
CLIENT = "police-image-platform"


async def gateway_with_device(make_gateway, audio: str = "pcma", **sections):  # noqa: ANN001, ANN201
    gw = await make_gateway(sip=sip(), webrtc=WEBRTC, **sections)
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, audio=audio))
    await sim.start()
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
    return gw, sim, cid


class AvClient:
    """A browser-like WHEP viewer: audio m-line first (PCMA, PCMU, Opus offered), then H.264 video."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.samples: list[np.ndarray] = []
        self.pictures = 0
        self.heard = asyncio.Event()
        self.seen = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def connect(self, http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
        self.pc.addTransceiver("audio", direction="recvonly")
        video = self.pc.addTransceiver("video", direction="recvonly")
        video.setCodecPreferences([c for c in RTCRtpReceiver.getCapabilities("video").codecs
                                   if c.mimeType == "video/H264"])
        self.pc.on("track", lambda track: self.tasks.append(asyncio.ensure_future(self._consume(track))))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await http.post(url, data=self.pc.localDescription.sdp,
                               headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {TOKEN}"})
        if resp.status == 201:
            await self.pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
        return resp

    async def _consume(self, track) -> None:  # noqa: ANN001
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "audio":
                assert frame.sample_rate == 8000
                self.samples.append(frame.to_ndarray().ravel().astype(np.float64))
                if sum(map(len, self.samples)) >= 8000:  # one second of sound
                    self.heard.set()
            else:
                self.pictures += 1
                if self.pictures >= 10:
                    self.seen.set()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()


def pitch(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 8000 / len(samples))


async def test_r1_whep_viewer_hears_the_devices_g711_tone_beside_its_video(make_gateway) -> None:  # noqa: ANN001
    gw, sim, cid = await gateway_with_device(make_gateway)
    client = AvClient()
    try:
        async with aiohttp.ClientSession() as http:
            resp = await client.connect(http, f"http://127.0.0.1:{gw.http_port}/api/whep/{cid}")
            assert resp.status == 201
            answer = client.pc.remoteDescription.sdp
            audio_section = answer.split("m=audio", 1)[1].split("m=video", 1)[0]
            assert "PCMA/8000" in audio_section and "opus" not in audio_section.lower()
            assert "a=sendonly" in audio_section
            await asyncio.wait_for(asyncio.gather(client.heard.wait(), client.seen.wait()), 20)
            samples = np.concatenate(client.samples)[-8000:]
            assert abs(pitch(samples) - TONE_HZ) < 15
            assert np.sqrt(np.mean(samples ** 2)) > 2000  # the tone, not silence
            fan = gw.app[EGRESS].fanouts[cid]
            assert fan.codec == "h264" and fan.audio_codec == "pcma" and fan.audio_frames > 0
            viewer = next(iter(fan.viewers))
            assert viewer.audio is not None and viewer.audio.packets >= 50
            assert viewer.audio.ssrc != viewer.ssrc
    finally:
        await client.close()
        await sim.stop()


async def test_r1_whep_offer_without_g711_gets_video_only(make_gateway) -> None:  # noqa: ANN001
    gw, sim, cid = await gateway_with_device(make_gateway)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        audio = pc.addTransceiver("audio", direction="recvonly")
        audio.setCodecPreferences([c for c in RTCRtpReceiver.getCapabilities("audio").codecs
                                   if c.mimeType == "audio/opus"])
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"http://127.0.0.1:{gw.http_port}/api/whep/{cid}", data=pc.localDescription.sdp,
                                   headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {TOKEN}"})
            assert resp.status == 201
            answer = await resp.text()
        assert "PCMA" not in answer and "a=sendonly" not in answer.split("m=audio", 1)[1].split("m=video", 1)[0]
        session = next(iter(gw.app[EGRESS].sessions.values()))
        assert session.viewer.audio is None
    finally:
        await pc.close()
        await sim.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):  # noqa: ANN001, ANN201
    folder = tmp_path_factory.mktemp("pki")
    assert cli_main(["grpc", "dev-pki", str(folder), "--client", CLIENT]) == 0
    return {path.name: path for path in folder.iterdir()}


async def test_r1_grpc_pull_live_carries_the_devices_audio_units_with_their_codec(make_gateway, pki) -> None:  # noqa: ANN001
    gw, sim, cid = await gateway_with_device(
        make_gateway, grpc={"enabled": True, "port": 0, "cert": str(pki["server.pem"]), "key": str(pki["server.key"]),
                            "client_ca": str(pki["ca.pem"])},
        identity={"clients": [f"{CLIENT}=police:5"]})
    try:
        async with client_channel(f"127.0.0.1:{gw.grpc.port}", str(pki["ca.pem"]), str(pki[f"{CLIENT}.pem"]),
                                  str(pki[f"{CLIENT}.key"]), None, []) as ch:
            call = rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id=cid))
            messages = []
            async for msg in call:
                messages.append(msg)
                if len(messages) == 60:
                    break
            call.cancel()
    finally:
        await sim.stop()
    info, units = messages[0].info, [m.unit for m in messages[1:]]
    assert info.codec == "h264"
    assert units[0].keyframe and not units[0].audio and units[0].codec == "h264"
    sound = [u for u in units if u.audio]
    assert len(sound) >= 20 and {u.codec for u in sound} == {"pcma"}
    assert not any(u.keyframe for u in sound) and {len(u.data) for u in sound} == {320}
    assert all(u.pts == u.dts for u in sound)
    pictures = [u.pts for u in units if not u.audio]
    assert sound[0].pts - pictures[0] < 90_000  # on the pictures' 90 kHz timeline
    # a later puller's StreamInfo names the audio already seen
    assert gw.hub.streams[cid].audio_codec == "pcma"


async def test_r1_recorder_keeps_the_pictures_of_a_camera_with_audio_and_passes_over_its_sound(make_gateway) -> None:  # noqa: ANN001
    """Segments are video only: the audio units between pictures neither break the segment (as a
    timestamp that does not advance would) nor go into the video track."""
    from sqlalchemy import select

    from gateway.recording.index import SegmentRow
    from gateway.recording.segments import read_units
    from gateway.recording.web import PART

    gw, sim, cid = await gateway_with_device(make_gateway, recording={"cameras": ["all"], "segment_seconds": 1.0,
                                                                      "fsync": False})
    try:
        async def closed() -> list[SegmentRow]:
            async with gw.db.session() as s:
                return list(await s.scalars(select(SegmentRow).where(SegmentRow.camera == cid,
                                                                     SegmentRow.status == "closed")))
        rows: list[SegmentRow] = []
        async with asyncio.timeout(20):
            while len(rows) < 2:
                await asyncio.sleep(0.2)
                rows = await closed()
        assert gw.hub.streams[cid].audio_units > 25  # the sound was there
    finally:
        await sim.stop()
    assert gw.metrics.value("vsgw_recording_errors_total", camera=cid) == 0
    for row in rows:
        units = [u for _, u in read_units(gw.app[PART].root / row.path, row.codec)]
        assert len(units) == row.frames >= 20 and units[0].keyframe
        assert {u.codec for u in units} == {"h264"}
        assert all(b.dts - a.dts == 3600 for a, b in zip(units, units[1:]))  # every picture, nothing between


BROADCAST_SDP = (b"v=0\r\no=34020000001370000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\n"
                 b"t=0 0\r\nm=audio 15062 RTP/AVP 8 96\r\na=recvonly\r\na=rtpmap:8 PCMA/8000\r\n"
                 b"a=rtpmap:96 PS/90000\r\ny=0100000001\r\nf=v/////a/1/8/1\r\n")


async def test_r1_device_invite_for_voice_broadcast_is_refused_with_488_and_the_reason(
        make_gateway, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    """A device that asks for the platform's audio (GB/T 28181 broadcast/talk: its own INVITE) gets
    a clear 488 with the reason, one INFO line, a count; the gateway keeps serving it."""
    import logging

    gw = await make_gateway(sip=sip())
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port))
    await sim.start()
    try:
        await asyncio.wait_for(sim.registered.wait(), 8)
        with caplog.at_level(logging.INFO, logger="adapters.gb28181.server"):
            resp = await sim.send(sim._request("INVITE", BROADCAST_SDP, "APPLICATION/SDP"))
        assert resp.status == 488
        assert "voice broadcast" in (resp.get("warning") or "")
        lines = [r.getMessage() for r in caplog.records if "INVITE" in r.getMessage()]
        assert len(lines) == 1 and sim.cfg.device_id in lines[0] and "voice broadcast" in lines[0]
        assert gw.metrics.value("vsgw_gb28181_invite_refused_total", reason="broadcast") == 1
        assert await sim.keepalive() == 200  # still served
    finally:
        await sim.stop()
