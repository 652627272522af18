"""RTP (RFC 3550) for PS media: header parse/build, loss counting, reordering, RFC 4571 framing.

GB/T 28181 carries MPEG-PS in RTP with payload type 96 and a 90 kHz clock; over TCP every RTP
packet has a 2-byte big-endian length in front (RFC 4571). Parsing is defensive: anything that is
not RTP version 2 with consistent CSRC/extension/padding lengths is rejected (``None``).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Generic, NamedTuple, TypeVar, cast

_HEADER = struct.Struct("!BBHII")
T = TypeVar("T")
_LEN = struct.Struct("!H")
SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000  # a jump this far ahead (or any packet this far behind) is a sender restart
MAX_MISORDER = 100


class RtpPacket(NamedTuple):  # a tuple: ~20x cheaper to build than a frozen dataclass
    marker: bool
    pt: int
    seq: int
    ts: int
    ssrc: int
    payload: bytes
    csrcs: tuple[int, ...] = ()
    extension: bytes | None = None  # profile (2 bytes) + data, when the X bit is set


def parse_rtp(data: bytes) -> RtpPacket | None:
    """A packet, or None for anything that is not valid RTP v2."""
    n = len(data)
    if n < 12:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 == 0x80:  # the common case: no CSRC, extension or padding
        return RtpPacket(b1 > 0x7F, b1 & 0x7F, seq, ts, ssrc, data[12:])
    if b0 & 0xC0 != 0x80:
        return None
    start = 12 + 4 * (b0 & 0x0F)
    csrcs = struct.unpack_from(f"!{b0 & 0x0F}I", data, 12) if b0 & 0x0F and start <= n else ()
    extension = None
    if b0 & 0x10:
        if start + 4 > n:
            return None
        words = _LEN.unpack_from(data, start + 2)[0]
        end = start + 4 + 4 * words
        extension = bytes(data[start:start + 2]) + bytes(data[start + 4:end])
        start = end
    end = n
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0:
            return None
        end -= pad
    if start > end:
        return None
    return RtpPacket(bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc, bytes(data[start:end]), csrcs, extension)


def build_rtp(payload: bytes, seq: int, ts: int, ssrc: int, pt: int = 96, marker: bool = False,
              csrcs: tuple[int, ...] = (), extension: bytes | None = None, padding: int = 0) -> bytes:
    """One packet; ``extension`` is profile (2 bytes) + data padded to 32-bit words."""
    b0 = 0x80 | len(csrcs) | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    parts = [_HEADER.pack(b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)]
    parts += [struct.pack("!I", c) for c in csrcs]
    if extension is not None:
        body = extension[2:] + b"\x00" * (-(len(extension) - 2) % 4)
        parts.append(extension[:2] + _LEN.pack(len(body) // 4) + body)
    parts.append(payload)
    if padding:
        parts.append(b"\x00" * (padding - 1) + bytes((padding,)))
    return b"".join(parts)


def packetize_ps(ps: bytes, seq: int, ts: int, ssrc: int, pt: int = 96, mtu: int = 1400) -> list[bytes]:
    """One PS pack (one picture) as RTP packets of at most ``mtu`` bytes; marker on the last."""
    step = mtu - 12
    head = _HEADER.pack
    b1, last = pt & 0x7F, len(ps) - step
    ts &= 0xFFFFFFFF
    return [
        head(0x80, b1 | (0x80 if off >= last else 0), (seq + i) & 0xFFFF, ts, ssrc) + ps[off:off + step]
        for i, off in enumerate(range(0, len(ps), step))
    ]


class SeqTracker:
    """Counts lost packets from sequence numbers (RFC 3550 A.1, simplified)."""

    def __init__(self) -> None:
        self.expected: int | None = None
        self.lost = 0
        self.late = 0  # duplicates and packets older than the ones already passed on
        self.restarts = 0

    def update(self, seq: int) -> int:
        """Sequence gap before ``seq`` (0 in order, > 0 lost, -1 late/duplicate: drop it)."""
        expected = self.expected
        if expected is None:
            self.expected = (seq + 1) % SEQ_MOD
            return 0
        delta = (seq - expected) % SEQ_MOD
        if delta == 0:
            self.expected = (seq + 1) % SEQ_MOD
            return 0
        if delta < MAX_DROPOUT:
            self.lost += delta
            self.expected = (seq + 1) % SEQ_MOD
            return delta
        if delta > SEQ_MOD - MAX_MISORDER:
            self.late += 1
            return -1
        self.restarts += 1  # the sender restarted its sequence
        self.expected = (seq + 1) % SEQ_MOD
        return 0


class Reorderer(Generic[T]):
    """Puts UDP packets back in sequence within a small window; bounded by ``window`` packets.

    ``push(seq, item)`` returns the items now in order, each with the count of packets lost
    just before it; a gap is given up on when ``window`` later packets are waiting behind it.
    """

    def __init__(self, window: int = 16) -> None:
        self.window = window
        self.tracker = SeqTracker()
        self.held: dict[int, T] = {}  # out-of-order packets waiting for a gap to fill

    def push(self, seq: int, item: T) -> list[tuple[int, T]]:
        tracker = self.tracker
        expected = tracker.expected
        if seq == expected or expected is None:
            tracker.expected = (seq + 1) & 0xFFFF
            out = [(0, item)]
            return self._drain(out) if self.held else out
        delta = (seq - expected) % SEQ_MOD
        if delta > SEQ_MOD - MAX_MISORDER:
            tracker.late += 1
            return []
        if delta >= MAX_DROPOUT:
            self.held.clear()
            tracker.update(seq)
            return [(0, item)]
        if seq in self.held:
            tracker.late += 1
            return []
        self.held[seq] = item
        if len(self.held) < self.window:
            return []
        return self._drain([], force=True)

    def _drain(self, out: list[tuple[int, T]], force: bool = False) -> list[tuple[int, T]]:
        held, tracker = self.held, self.tracker
        while held:
            seq = cast(int, tracker.expected)
            if seq not in held:
                if not force:
                    break
                seq = min(held, key=lambda s: (s - cast(int, tracker.expected)) % SEQ_MOD)
                force = False
            out.append((tracker.update(seq), held.pop(seq)))
        return out

    def flush(self) -> list[tuple[int, T]]:
        out: list[tuple[int, T]] = []
        while self.held:
            out = self._drain(out, force=True)
        return out


def frame_4571(packet: bytes) -> bytes:
    return _LEN.pack(len(packet)) + packet


async def send_packets(packets: list[bytes], udp: asyncio.DatagramTransport | None,
                       writer: asyncio.StreamWriter | None) -> None:
    """RTP packets out: one datagram each over UDP, or RFC 4571-framed in one write over TCP."""
    if udp is not None:
        for pkt in packets:
            udp.sendto(pkt)
        return
    assert writer is not None
    writer.write(b"".join(frame_4571(p) for p in packets))
    await writer.drain()


class Deframer:
    """RFC 4571 stream → RTP packets. A frame that does not look like RTP v2 (senders that start
    mid-packet) makes it skip to the next plausible header; each resync counts once in ``errors``."""

    def __init__(self, max_buffer: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max = max_buffer
        self._synced = True
        self.errors = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos, n = 0, len(buf)
        with memoryview(buf) as view:
            while n - pos >= 3:
                size = (buf[pos] << 8) | buf[pos + 1]
                if size < 12 or buf[pos + 2] & 0xC0 != 0x80:
                    if self._synced:
                        self._synced = False
                        self.errors += 1
                    nxt = buf.find(b"\x80", pos + 3)  # next plausible RTP v2 first byte
                    pos = nxt - 2 if nxt >= 0 else max(pos + 1, n - 2)
                    continue
                if n - pos - 2 < size:
                    break
                self._synced = True
                out.append(bytes(view[pos + 2:pos + 2 + size]))
                pos += 2 + size
        if pos:
            del buf[:pos]
        if len(buf) > self._max:
            buf.clear()
            self.errors += 1
        return out
