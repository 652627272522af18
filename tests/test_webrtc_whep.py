"""WHEP egress with an aiortc client (R1): auth, policy gate (R2), decoding, instant start, PLI."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import aiohttp
from aiortc.mediastreams import MediaStreamError
import numpy as np
import pytest

from gateway.egress.webrtc.client import WhepClient
from gateway.egress.webrtc.whep import EGRESS
from gateway.policy import InternalAccess
from tests.conftest import TOKEN, synthetic
from tests.people import FAST_ARGON2, person, relative_grant, trail

TEST_READER = InternalAccess("test")

WEBRTC = {"host_addresses": ["127.0.0.1"]}


def url(gw, cid: str) -> str:  # noqa: ANN001
    return f"http://127.0.0.1:{gw.http_port}/api/whep/{cid}"


async def test_r1_aiortc_client_decodes_h264_and_delete_ends_the_session(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("c1")], webrtc=WEBRTC)
    client = WhepClient(url(gw, "c1"), TOKEN)
    async with aiohttp.ClientSession() as http:
        resp = await client.connect(http)
        assert resp.status == 201 and resp.content_type == "application/sdp"
        assert "H264" in client.pc.remoteDescription.sdp and "VP8" not in client.pc.remoteDescription.sdp
        await asyncio.wait_for(client.first_frame, 10)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(client.frames) < 20:
            assert loop.time() < deadline, len(client.frames)
            await asyncio.sleep(0.05)
        assert {(w, h) for _, w, h in client.frames} == {(320, 240)}
        egress = gw.app[EGRESS]
        assert len(egress.sessions) == 1
        await client.close(http)
        assert not egress.sessions


async def test_r18_whep_without_token_is_401_and_bad_offer_is_400(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("c1")], webrtc=WEBRTC)
    client = WhepClient(url(gw, "c1"), None)
    async with aiohttp.ClientSession() as http:
        resp = await client.connect(http)
        assert resp.status == 401
        await client.pc.close()
        bad = await http.post(url(gw, "c1"), data="v=0\r\nnonsense", headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/sdp"})
        assert bad.status == 400 and (await bad.json())["error"] == "bad_offer"
        missing = await http.post(url(gw, "nope"), data="v=0", headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/sdp"})
        assert missing.status == 404
    assert gw.metrics.value("vsgw_webrtc_rejected_total", reason="offer") >= 1


async def test_r2_whep_refused_with_the_gate_reason(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("c1")], webrtc=WEBRTC, identity=FAST_ARGON2)
    base = gw.resource_resolver
    gw.resource_resolver = lambda cid: replace(base(cid), security_level=3)
    operator = await person(gw, "op", "wall_operator", clearance=1)
    client = WhepClient(url(gw, "c1"), operator)
    async with aiohttp.ClientSession() as http:
        resp = await client.connect(http)
        assert resp.status == 403
        assert "clearance 1 is below security level 3" in (await resp.json())["message"]
    await client.pc.close()
    assert not gw.hub.streams.get("c1") or not gw.hub.streams["c1"].readers
    (row,) = await trail(gw, action="view_live")
    assert (row.actor, row.resource, row.decision, row.extra["egress"]) == ("user:op", "camera:c1", "deny", "whep")


class PictureClient(WhepClient):
    """A WHEP client that keeps the luma plane of each picture it decodes."""

    def __init__(self, *args, **kw) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kw)
        self.pictures: list[np.ndarray] = []
        self.enough = asyncio.Event()

    async def _consume(self, track) -> None:  # noqa: ANN001
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.pictures.append(frame.to_ndarray(format="gray"))
            if len(self.pictures) >= 10:
                self.enough.set()


def _textured_columns(luma: np.ndarray) -> float:
    """The share of columns whose luma varies down the middle of the picture. The synthetic camera's
    colour bars are uniform there (only its moving box crosses them); a burnt-in text pattern is not."""
    h = luma.shape[0]
    band = luma[int(h * 0.42):int(h * 0.72)].astype(int)
    return float(np.mean(band.max(axis=0) - band.min(axis=0) > 40))


async def test_r13_relatives_whep_session_carries_the_watermark_in_its_pixels(make_gateway) -> None:  # noqa: ANN001
    """A relative's grant (made by a police officer) opens the camera live over WHEP; that session
    gets a fan-out of its own that burns the grant's text into the picture, while the service
    identity watching the same camera beside it gets the camera's pictures untouched."""
    gw = await make_gateway(cameras=[synthetic("c1")], webrtc=WEBRTC, identity=FAST_ARGON2)
    now = datetime.now(UTC)
    relative, grant = await relative_grant(gw, ["c1"], now - timedelta(hours=1), now + timedelta(hours=1))
    egress = gw.app[EGRESS]
    marked, plain = PictureClient(url(gw, "c1"), relative), PictureClient(url(gw, "c1"), TOKEN)
    async with aiohttp.ClientSession() as http:
        resp = await marked.connect(http)
        assert resp.status == 201, await resp.text()
        text = unquote(resp.headers["X-Vsgw-Watermark"])
        assert text.startswith(grant + " ")
        service = await plain.connect(http)
        assert service.status == 201 and "X-Vsgw-Watermark" not in service.headers
        fans = {s.subject_id: s.fan for s in egress.sessions.values()}
        own = fans.pop(f"relative:{grant}")
        assert own.watermark == text and own is not egress.fanouts["c1"]
        assert list(fans.values()) == [egress.fanouts["c1"]] and egress.fanouts["c1"].watermark is None
        await asyncio.wait_for(asyncio.gather(marked.enough.wait(), plain.enough.wait()), 15)
        await marked.close(http)
        await plain.close(http)
    assert not egress.sessions
    textured = [_textured_columns(p) for p in marked.pictures[-5:]]
    untouched = [_textured_columns(p) for p in plain.pictures[-5:]]
    assert min(textured) > 0.6 and max(untouched) < 0.3, (textured, untouched)  # the box covers 1/8 of the columns


async def test_instant_start_mid_gop_first_frame_before_next_keyframe(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("c1", gop=100)], webrtc=WEBRTC)  # GOP 4 s
    reader = gw.hub.subscribe(TEST_READER, "c1", name="warm")
    stream = gw.hub.streams["c1"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(stream.gop) < 30:  # 1.2 s into the GOP
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    client = WhepClient(url(gw, "c1"), TOKEN)
    async with aiohttp.ClientSession() as http:
        assert (await client.connect(http)).status == 201
        first = await asyncio.wait_for(client.first_frame, 5)
        gop_left = (100 - len(stream.gop)) / 25
        assert first < 1.0 and first < gop_left, (first, gop_left)
        await client.close(http)
    reader.close()


async def test_pli_reaches_request_keyframe(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("c1", gop=100)], webrtc=WEBRTC)
    adapter = gw.registry.adapter_for("c1")
    client = WhepClient(url(gw, "c1"), TOKEN)
    async with aiohttp.ClientSession() as http:
        assert (await client.connect(http)).status == 201
        await asyncio.wait_for(client.first_frame, 5)
        before = adapter.keyframe_requests
        receiver = client.pc.getTransceivers()[0].receiver
        await receiver._send_rtcp_pli(receiver._RTCRtpReceiver__remote_streams and
                                      next(iter(receiver._RTCRtpReceiver__remote_streams)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while adapter.keyframe_requests == before:
            assert loop.time() < deadline, "PLI never reached request_keyframe"
            await asyncio.sleep(0.02)
        await client.close(http)


def test_fast_protect_is_byte_identical_to_pylibsrtp_and_decrypts() -> None:
    """The fan-out's SRTP shortcut must produce exactly what libsrtp's public call produces."""
    import os
    import struct

    from pylibsrtp import Policy, Session

    from gateway.egress.webrtc.srtp import fast_protect

    key = os.urandom(30)
    sessions = [Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)) for _ in range(2)]
    receiver = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    fast = fast_protect(sessions[1])
    assert getattr(fast, "session", None) is sessions[1]  # the shortcut, not the fallback, with this pylibsrtp
    for seq in range(300):  # across payload sizes, marker bits and a sequence wrap of the low byte
        packet = struct.pack("!BBHII", 0x80, 96 | (0x80 if seq % 7 == 0 else 0), seq, seq * 3600, 0x1234) \
            + os.urandom(1 + seq * 4)
        expected = sessions[0].protect(packet)
        assert fast(packet) == expected
        assert receiver.unprotect(expected) == packet
    with pytest.raises(ValueError):
        fast(bytes(1500))


async def test_gso_sender_delivers_the_same_datagrams_in_order() -> None:
    """Trains of equal-size packets (with one shorter tail) leave as separate datagrams, in order,
    whether the kernel segments them or the per-packet fallback does."""
    import socket

    from gateway.egress.webrtc.gso import GsoSender

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    sender = GsoSender(transport)
    sizes = [1222] * 70 + [500] + [300, 300, 90] + [1222]
    packets = [bytes([i % 256]) * size for i, size in enumerate(sizes)]
    try:
        sender.send(packets, receiver.getsockname())
        got = [receiver.recv(2048) for _ in packets]
    finally:
        sender.close()
        transport.close()
        receiver.close()
    assert got == packets
    assert sender.trains in (0, 3)  # 64 + (6 + the 500-byte tail) + (300, 300, 90): or none without GSO
