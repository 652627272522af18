"""GB/T 28181 PS/RTP media over loopback (R1): MediaSender → MediaSession over UDP and both TCP
setups, SSRC quirks, garbage, loss and reordering; what arrives is decoded by FFmpeg."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import random
import socket

import av
import pytest

from adapters.gb28181.media import MediaSender, MediaSession, PortPool
from adapters.gb28181.ps import mux_ps
from adapters.gb28181.rtp import build_rtp, frame_4571, packetize_ps, parse_rtp
from adapters.synthetic import PatternEncoder, PatternSpec
from gateway.media import AccessUnit

W, H = 320, 240
HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def units() -> list[AccessUnit]:
    encoder = PatternEncoder(PatternSpec("gb-media", W, H, 25, 10, 300_000, noise=12))
    out: list[AccessUnit] = []
    while len(out) < 14:
        out += encoder.encode()
    return out


def rtp_stream(units: list[AccessUnit], ssrc: int, seq: int = 1000) -> list[bytes]:
    packets: list[bytes] = []
    for unit in units:
        packets += packetize_ps(mux_ps(unit, unit.dts), seq + len(packets), unit.dts, ssrc, mtu=600)
    return packets


async def source(units: list[AccessUnit]) -> AsyncIterator[AccessUnit]:
    for unit in units:
        yield unit


async def collect(session: MediaSession, n: int, timeout: float = 10.0) -> list[AccessUnit]:
    out: list[AccessUnit] = []

    async def read() -> None:
        async for unit in session.units():
            out.append(unit)
            if len(out) >= n:
                return

    await asyncio.wait_for(read(), timeout)
    return out


async def until(predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def decoded_sizes(units: list[AccessUnit]) -> list[tuple[int, int]]:
    ctx = av.CodecContext.create("h264", "r")
    frames = [f for u in units for f in ctx.decode(av.Packet(u.data))] + ctx.decode(None)
    return [(f.width, f.height) for f in frames]


@pytest.mark.parametrize("transport", ["udp", "tcp-passive", "tcp-active"])
async def test_r1_sender_to_session_delivers_decodable_units(units: list[AccessUnit], transport: str) -> None:
    session = MediaSession(PortPool(0, 0), HOST, transport, ssrc=123456789)
    port = await session.open()
    assert port > 0
    device_side = {"udp": "udp", "tcp-passive": "tcp-active", "tcp-active": "tcp-passive"}[transport]
    sender = MediaSender(device_side, HOST, port, 123456789, source(units))
    device_port = await sender.open()
    if transport == "tcp-active":
        assert device_port > 0
        await session.connect(HOST, device_port)
    task = asyncio.create_task(sender.run())
    try:
        got = await collect(session, len(units) - 1)  # the last one completes when a next would begin
    finally:
        await sender.close()
        await task
        await session.close()
    assert [u.data for u in got] == [u.data for u in units[: len(got)]]
    assert decoded_sizes(got) == [(W, H)] * len(got)
    assert session.ssrc_seen == 123456789
    assert session.bad_packets == session.lost == 0
    assert session.last_packet > 0 and session.bytes > sum(u.size for u in got)


async def test_r1_device_answering_with_its_own_ssrc_is_accepted(units: list[AccessUnit]) -> None:
    session = MediaSession(PortPool(0, 0), HOST, "udp", ssrc=100)
    port = await session.open()
    sender = MediaSender("udp", HOST, port, 987654321, source(units))
    task = asyncio.create_task(sender.run())
    try:
        got = await collect(session, 5)
    finally:
        await sender.close()
        await task
        await session.close()
    assert session.ssrc_seen == 987654321
    assert decoded_sizes(got) == [(W, H)] * 5


async def test_r1_offered_ssrc_wins_and_crossed_streams_are_dropped(units: list[AccessUnit]) -> None:
    """A stray sender on our port (another stream's SSRC) is dropped once the offered SSRC is seen."""
    session = MediaSession(PortPool(0, 0), HOST, "udp", ssrc=42)
    port = await session.open()
    good, stray = rtp_stream(units, 42), rtp_stream(units, 77, seq=5000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, pkt in enumerate(good):
            s.sendto(pkt, (HOST, port))
            if i % 3 == 0 and i // 3 < len(stray):
                s.sendto(stray[i // 3], (HOST, port))
            await asyncio.sleep(0)
        got = await collect(session, len(units) - 1)
    await session.close()
    assert session.ssrc_seen == 42
    assert session.foreign_ssrc > 0 and session.bad_packets == session.foreign_ssrc
    assert [u.data for u in got] == [u.data for u in units[: len(got)]]


async def test_r1_garbage_datagrams_are_counted_and_the_stream_survives(units: list[AccessUnit]) -> None:
    session = MediaSession(PortPool(0, 0), HOST, "udp", ssrc=None)
    port = await session.open()
    rnd = random.Random(5)
    payloads = [parse_rtp(p).payload for p in rtp_stream(units, 9)]
    garbage = [bytes(rnd.randrange(256) for _ in range(600)) for _ in range(4)]
    payloads[16:16] = garbage  # PS garbage inside valid RTP, mid-GOP (before the second keyframe)
    packets = [build_rtp(p, 1000 + i, 0, 9) for i, p in enumerate(payloads)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x00" * 5, b"GET / HTTP/1.0\r\n\r\n", bytes(rnd.randrange(256) for _ in range(900))):
            s.sendto(junk, (HOST, port))
        for pkt in packets:
            s.sendto(pkt, (HOST, port))
            await asyncio.sleep(0)
        await until(lambda: session.packets == len(packets))
    got = list(session._queue)
    await session.close()
    assert session.bad_packets >= 3  # the empty datagram may never be delivered
    assert session.ps_errors >= 1
    stats = session.stats()
    assert stats["bad_rtp"] == session.bad_packets and stats["bad_ps"] == session.ps_errors
    assert stats["units"] == len(got)
    assert session.lost == 0  # the bad PS arrived in sequence: counted as PS errors, not as loss
    good = {u.data for u in units}
    assert all(u.data in good for u in got) and len(got) >= len(units) - 4
    assert set(decoded_sizes(got)) == {(W, H)}  # P-frames after the hole may be skipped by the decoder
    last_key = max(i for i, u in enumerate(got) if u.keyframe)
    assert last_key > 0 and decoded_sizes(got[last_key:]) == [(W, H)] * (len(got) - last_key)


async def test_r1_udp_reordering_is_undone_and_loss_drops_only_the_hit_unit(units: list[AccessUnit]) -> None:
    session = MediaSession(PortPool(0, 0), HOST, "udp", ssrc=7)
    port = await session.open()
    packets = rtp_stream(units, 7)
    rnd = random.Random(11)
    for i in range(1, len(packets) - 4, 4):
        block = packets[i:i + 4]
        rnd.shuffle(block)
        packets[i:i + 4] = block
    lost_at = len(packets) // 2
    del packets[lost_at]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for pkt in packets:
            s.sendto(pkt, (HOST, port))
            await asyncio.sleep(0)
        await until(lambda: session.packets == len(packets))
    got = list(session._queue)
    await session.close()
    assert session.lost == 1
    assert session.demuxer.dropped == 1
    sent = [u.data for u in units]
    assert [u.data for u in got] == [d for d in sent if d in {u.data for u in got}]
    assert len(got) >= len(units) - 3


async def test_r1_tcp_passive_refuses_a_second_live_connection(units: list[AccessUnit]) -> None:
    session = MediaSession(PortPool(0, 0), HOST, "tcp-passive", ssrc=5)
    port = await session.open()
    _, w1 = await asyncio.open_connection(HOST, port)
    w1.write(b"".join(frame_4571(p) for p in rtp_stream(units[:3], 5)))
    await w1.drain()
    await until(lambda: session.packets > 0)
    r2, w2 = await asyncio.open_connection(HOST, port)
    assert await asyncio.wait_for(r2.read(), 5) == b""  # closed by the session
    w2.close()
    w1.close()
    await session.close()
    assert session.connections == 1


async def test_r1_port_pool_round_robin_and_exhaustion() -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        low = probe.getsockname()[1]
    pool = PortPool(low, low)
    first = MediaSession(pool, HOST, "udp", None)
    assert await first.open() == low
    with pytest.raises(OSError, match="no free RTP port"):
        await MediaSession(pool, HOST, "udp", None).open()
    await first.close()
    assert pool.in_use == 0
    again = MediaSession(pool, HOST, "udp", None)
    assert await again.open() == low
    await again.close()
    with pytest.raises(ValueError):
        PortPool(5000, 4000)


async def test_r1_tcp_active_gives_up_after_three_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    """GB/T 28181-2022: at least three connection attempts, then a clear error (not a hang)."""
    import adapters.gb28181.media as media

    monkeypatch.setattr(media, "CONNECT_GAP", 0.01)
    attempts = 0
    real = asyncio.get_running_loop().sock_connect

    async def counting(sock: socket.socket, address: tuple[str, int]) -> None:
        nonlocal attempts
        attempts += 1
        await real(sock, address)

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind((HOST, 0))
        dead = probe.getsockname()[1]
        session = MediaSession(PortPool(0, 0), HOST, "tcp-active", ssrc=1)
        await session.open()
        monkeypatch.setattr(asyncio.get_running_loop(), "sock_connect", counting)
        with pytest.raises(OSError):
            await session.connect(HOST, dead)
    await session.close()
    assert attempts == 3
