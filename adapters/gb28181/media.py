"""PS-over-RTP media for one GB/T 28181 stream (R1): the platform's receiver and the device's sender.

One receive port per stream (a shared port crosses streams, see notes/gb28181.md §2). UDP runs
on an ``asyncio.DatagramProtocol`` (fast under uvloop) with a large socket buffer and a small
reorder window; TCP uses RFC 4571 framing, with us listening (``tcp-passive``) or connecting
(``tcp-active``). SSRC rule: the offered SSRC wins once it has been seen; until then the first
SSRC seen is adopted, so devices that answer with their own ``y=`` or none still work. Every
buffer is bounded; bad RTP and PS are counted, never raised.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator
import contextlib
import logging
import socket
import struct
from typing import cast

from gateway.media import CLOCK_RATE, PCMA, AccessUnit

from .ps import PsDemuxer, mux_ps
from .rtp import Deframer, Reorderer, SeqTracker, packetize_ps, parse_rtp, send_packets

log = logging.getLogger(__name__)

TRANSPORTS = ("udp", "tcp-passive", "tcp-active")
RCVBUF = 4 * 1024 * 1024
MAX_QUEUE_BYTES = 32 * 1024 * 1024  # demuxed units waiting for the hub
SSRC_IDLE = 2.0  # an adopted (not offered) SSRC silent this long may be replaced
_SEQ_SSRC = struct.Struct("!H4xI")
CONNECT_TRIES, CONNECT_GAP = 3, 1.0  # GB/T 28181-2022: TCP media reconnects ≥ 3 times, ≥ 1 s apart


class PortPool:
    """Hands out RTP receive ports round-robin from [low, high], so a just-freed port is not
    reused at once (a late packet of the old stream would land in the new one). ``low == 0``
    means ephemeral ports chosen by the OS (tests)."""

    def __init__(self, low: int, high: int) -> None:
        if not (low == high == 0 or 0 < low <= high <= 65535):
            raise ValueError(f"bad RTP port range {low}-{high}")
        self.low, self.high = low, high
        self._used: set[int] = set()
        self._next = low

    def candidates(self) -> Iterator[int]:
        if self.low == 0:
            yield 0
            return
        span = self.high - self.low + 1
        for i in range(span):
            port = self.low + (self._next - self.low + i) % span
            if port not in self._used:
                yield port

    def take(self, port: int) -> None:
        if self.low:
            self._used.add(port)
            self._next = port + 1 if port < self.high else self.low

    def release(self, port: int) -> None:
        self._used.discard(port)

    @property
    def in_use(self) -> int:
        return len(self._used)


def _bind(pool: PortPool, host: str, kind: int) -> socket.socket:
    for port in pool.candidates():
        sock = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_DGRAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        pool.take(sock.getsockname()[1])
        return sock
    raise OSError(f"no free RTP port in {pool.low}-{pool.high}")


class MediaSession:
    """Receives one stream (platform side, one per INVITE) and yields its access units."""

    def __init__(self, pool: PortPool, host: str, transport: str, ssrc: int | None) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown media transport {transport!r}")
        self.pool, self.host, self.transport = pool, host, transport
        self.expected_ssrc = ssrc
        self.port = 0
        self.demuxer = PsDemuxer()
        self._udp = transport == "udp"
        self._reorder: Reorderer[bytes] = Reorderer()
        self._seq = SeqTracker()
        self._deframer = Deframer()
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._server: asyncio.Server | None = None
        self._conn: asyncio.Transport | None = None
        self._queue: deque[AccessUnit] = deque()
        self._queued = 0
        self._need_key = False
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._finished = False  # end of file announced: stop once the queue is drained
        self._remote: tuple[str, int] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self.last_packet = self._loop.time()
        self.packets = 0
        self.bytes = 0
        self.bad_packets = 0  # not RTP, or RTP from a foreign SSRC
        self.foreign_ssrc = 0
        self.dropped_units = 0  # units the hub did not take in time
        self.ssrc_seen: int | None = None
        self._ssrc_locked = False  # the offered SSRC has been seen: nothing else is accepted
        self.connections = 0

    # -- counters ----------------------------------------------------------------
    @property
    def lost(self) -> int:
        return (self._reorder.tracker if self._udp else self._seq).lost

    @property
    def ps_errors(self) -> int:
        return self.demuxer.errors

    def stats(self) -> dict[str, int]:
        """Counters for metrics: what arrived, and what was rejected or lost and why."""
        tracker = self._reorder.tracker if self._udp else self._seq
        return {
            "packets": self.packets, "bytes": self.bytes, "units": self.demuxer.units,
            "bad_rtp": self.bad_packets - self.foreign_ssrc, "foreign_ssrc": self.foreign_ssrc,
            "lost": tracker.lost, "late": tracker.late, "bad_ps": self.demuxer.errors,
            "dropped_units": self.dropped_units + self.demuxer.dropped, "bad_framing": self._deframer.errors,
            "audio_units": self.demuxer.audio_units, "audio_unsupported": self.demuxer.audio_unsupported,
        }

    # -- lifecycle ---------------------------------------------------------------
    async def open(self) -> int:
        """Bind (UDP, tcp-active) or listen (tcp-passive); the port goes into our SDP."""
        if self.transport == "udp":
            sock = _bind(self.pool, self.host, socket.SOCK_DGRAM)
            self._transport, _ = await self._loop.create_datagram_endpoint(lambda: _Udp(self), sock=sock)
        elif self.transport == "tcp-passive":
            sock = _bind(self.pool, self.host, socket.SOCK_STREAM)
            self._server = await self._loop.create_server(lambda: _Tcp(self), sock=sock, backlog=4)
        else:
            self._sock = sock = _bind(self.pool, self.host, socket.SOCK_STREAM)
        self.port = sock.getsockname()[1]
        return self.port

    async def connect(self, host: str, port: int) -> None:
        """tcp-active: connect to the port in the device's answer (retries as GB/T 28181-2022)."""
        if self.transport != "tcp-active":
            raise ValueError("connect() is for tcp-active sessions")
        self._remote = (host, port)
        await self._dial()

    async def _dial(self) -> None:
        assert self._remote is not None
        error: OSError | None = None
        for attempt in range(CONNECT_TRIES):
            if self._closed:
                return
            sock = self._sock or _reuse(self.host, self.port)
            self._sock = None
            try:
                await asyncio.wait_for(self._loop.sock_connect(sock, self._remote), 5.0)
                await self._loop.create_connection(lambda: _Tcp(self), sock=sock)
                return
            except (OSError, asyncio.TimeoutError) as exc:
                sock.close()
                error = exc if isinstance(exc, OSError) else OSError(f"connect to {self._remote} timed out")
                if attempt + 1 < CONNECT_TRIES:
                    await asyncio.sleep(CONNECT_GAP)
        raise error or OSError("connect failed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        for transport in (self._transport, self._conn):
            if transport is not None:
                transport.close()
        if self._server is not None:
            self._server.close()
        if self._sock is not None:
            self._sock.close()
        self._wake()
        await asyncio.sleep(0)  # transports close their sockets on the next loop iteration
        self.pool.release(self.port)

    # -- output ------------------------------------------------------------------
    async def units(self, silence: float | None = None) -> AsyncIterator[AccessUnit]:
        """Access units in arrival order until :meth:`close`; ``TimeoutError`` when none came for
        ``silence`` seconds. One timer handle per wait: cheap enough for every unit of every camera."""
        queue, loop = self._queue, self._loop
        while True:
            while queue:
                unit = queue.popleft()
                self._queued -= unit.size
                yield unit
            if self._closed or self._finished:
                return
            self._waiter = loop.create_future()
            timer = loop.call_later(silence, self._wake) if silence else None
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not queue and not self._closed and not self._finished and silence:
                raise TimeoutError(f"no media for {silence:g} s")

    def finish(self) -> None:
        """The device says it sent everything (end of file): the picture in progress is complete
        (the demuxer holds a unit until the next one starts), and ``units()`` ends once drained."""
        if not self._finished and not self._closed:
            self._emit(self.demuxer.flush())
        self._finished = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _emit(self, units: list[AccessUnit]) -> None:
        queue = self._queue
        for unit in units:
            if self._need_key:
                if not unit.keyframe:
                    self.dropped_units += 1
                    continue
                self._need_key = False
            if self._queued + unit.size > MAX_QUEUE_BYTES:
                self.dropped_units += len(queue)
                queue.clear()
                self._queued = 0
                if not unit.keyframe:
                    self._need_key = True
                    self.dropped_units += 1
                    continue
            queue.append(unit)
            self._queued += unit.size
        self._wake()

    # -- input (hot path) --------------------------------------------------------
    def _accept_ssrc(self, ssrc: int) -> bool:
        seen = self.ssrc_seen
        if ssrc == seen:
            return True
        expected = self.expected_ssrc
        if seen is None or (ssrc == expected) or (
            not self._ssrc_locked and self._loop.time() - self.last_packet > SSRC_IDLE
        ):
            if seen is not None:
                log.info("RTP port %d: SSRC %d replaces %d", self.port, ssrc, seen)
                self.demuxer.discontinuity()
                self._reorder = Reorderer()
                self._seq = SeqTracker()
            self.ssrc_seen = ssrc
            self._ssrc_locked = ssrc == expected
            return True
        self.foreign_ssrc += 1
        return False

    def packet(self, data: bytes) -> None:
        """One RTP packet (UDP datagram or RFC 4571 frame)."""
        if len(data) > 12 and data[0] == 0x80:  # plain RTP v2: the hot path skips parse_rtp
            seq, ssrc = _SEQ_SSRC.unpack_from(data, 2)
            payload = data[12:]
        else:
            pkt = parse_rtp(data)
            if pkt is None:
                self.bad_packets += 1
                return
            seq, ssrc, payload = pkt.seq, pkt.ssrc, pkt.payload
        if ssrc != self.ssrc_seen and not self._accept_ssrc(ssrc):
            self.bad_packets += 1
            return
        self.packets += 1
        self.bytes += len(data)
        self.last_packet = self._loop.time()
        demuxer = self.demuxer
        if self._udp:
            reorder = self._reorder
            tracker = reorder.tracker
            if seq == tracker.expected and not reorder.held:  # in order: skip the reorderer
                tracker.expected = (seq + 1) & 0xFFFF
                units = demuxer.feed(payload)
            else:
                units = []
                for gap, chunk in reorder.push(seq, payload):
                    if gap:
                        demuxer.discontinuity()
                    units += demuxer.feed(chunk)
        else:
            tracker = self._seq
            if seq == tracker.expected:
                tracker.expected = (seq + 1) & 0xFFFF
            else:
                gap = tracker.update(seq)
                if gap < 0:
                    return
                if gap:
                    demuxer.discontinuity()
            units = demuxer.feed(payload)
        if units:
            self._emit(units)

    def stream_data(self, data: bytes) -> None:
        for frame in self._deframer.feed(data):
            self.packet(frame)

    def tcp_connected(self, transport: asyncio.Transport) -> bool:
        """A device connection; a second one is refused while the first one is live."""
        if self._closed or (self._conn is not None and self._loop.time() - self.last_packet < SSRC_IDLE):
            return False
        if self._conn is not None:
            self._conn.close()
        self._conn = transport
        self.connections += 1
        self._deframer = Deframer()
        self._seq = SeqTracker()
        self.demuxer.discontinuity()
        return True

    def tcp_lost(self, transport: asyncio.Transport) -> None:
        if transport is not self._conn:
            return
        self._conn = None
        if self.transport == "tcp-active" and not self._closed and self._reconnect is None:
            self._reconnect = self._loop.create_task(self._redial())

    async def _redial(self) -> None:
        try:
            await asyncio.sleep(CONNECT_GAP)
            await self._dial()
        except OSError as exc:
            log.warning("RTP port %d: reconnect failed: %s", self.port, exc)
        finally:
            self._reconnect = None


def _reuse(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, session: MediaSession) -> None:
        self.packet = session.packet

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packet(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP UDP error: %s", exc)


class _Tcp(asyncio.Protocol):
    def __init__(self, session: MediaSession) -> None:
        self.session = session
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's TCP transport is not a subclass
        self.transport = transport
        if not self.session.tcp_connected(transport):
            transport.close()
            self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            self.session.stream_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.session.tcp_lost(self.transport)


class MediaSender:
    """Device side (the simulator, and cascading to a superior): units → PS → RTP, paced by DTS."""

    def __init__(self, transport: str, remote_host: str, remote_port: int, ssrc: int,
                 units: AsyncIterator[AccessUnit], local_host: str = "127.0.0.1") -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown media transport {transport!r}")
        self.transport = transport
        self.remote = (remote_host, remote_port)
        self.ssrc = ssrc & 0xFFFFFFFF
        self.local_host = local_host
        self._units = units
        self._seq = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.packets_sent = 0
        self.units_sent = 0
        self.speed = 1.0  # media seconds sent per wall second (a playback's Scale, a download's speed)
        self._rebase = False

    def pace(self, speed: float) -> None:
        """From the next unit on, send at ``speed`` × the media clock, timed from that unit (also
        after a pause or a jump in the timeline)."""
        self.speed, self._rebase = speed, True

    async def open(self) -> int:
        """tcp-passive: listen and return the port for our SDP answer; otherwise 0."""
        if self.transport != "tcp-passive":
            return 0

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._writer is None:
                self._writer = writer
                self._connected.set()
            else:
                writer.close()

        self._server = await asyncio.start_server(accepted, self.local_host, 0)
        return self._server.sockets[0].getsockname()[1]

    async def run(self) -> None:
        """Send until the units end or :meth:`close` is called."""
        if self._closing:
            return
        self._task = asyncio.get_running_loop().create_task(self._send_all())
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._closing:
                raise
        finally:
            await self._shutdown()

    async def _send_all(self) -> None:
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            self._udp, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(self.local_host, 0), remote_addr=self.remote)
        elif self.transport == "tcp-active":
            _, self._writer = await asyncio.open_connection(*self.remote)
        else:
            await self._connected.wait()
        start: tuple[float, int] | None = None
        audio = PCMA  # what the PSM names for the audio stream: the codec of the last audio unit
        async for unit in self._units:
            if unit.is_audio:
                audio = unit.codec
            now = loop.time()
            ahead = (unit.dts - start[1]) / CLOCK_RATE / self.speed if start is not None else 0.0
            if start is None or self._rebase or unit.dts < start[1] or ahead > now - start[0] + 5:
                start, self._rebase, ahead = (now, unit.dts), False, 0.0  # first unit, or the timeline jumped
            delay = start[0] + ahead - now
            if delay > 0:
                await asyncio.sleep(delay)
            packets = packetize_ps(mux_ps(unit, unit.dts, audio), self._seq, unit.dts, self.ssrc)
            self._seq = (self._seq + len(packets)) & 0xFFFF
            await send_packets(packets, self._udp, self._writer)
            self.packets_sent += len(packets)
            self.units_sent += 1

    async def _shutdown(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        else:
            await self._shutdown()
