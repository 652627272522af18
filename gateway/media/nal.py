"""Annex-B helpers shared by adapters (depacketisers, PS demuxer) and egress (packetisers)."""

from __future__ import annotations

from collections.abc import Iterator

from .unit import H264, H265

START = b"\x00\x00\x01"


def find_start(buf: bytes | bytearray, pos: int = 0) -> int:
    """Index of the next ``00 00 01`` at or after ``pos``, or -1. Searching for ``00 01`` and
    checking the byte before is ~5x faster than ``find`` with the 3-byte needle on coded video."""
    i = buf.find(b"\x00\x01", pos + 1)
    while i > 0:
        if buf[i - 1] == 0:
            return i - 1
        i = buf.find(b"\x00\x01", i + 2)
    return -1


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B buffer, without start codes (3- or 4-byte)."""
    out: list[bytes] = []
    n = len(data)
    i = find_start(data)
    while 0 <= i < n:
        begin = i + 3
        j = find_start(data, begin)
        if j < 0:
            out.append(data[begin:])
            break
        end = j - 1 if data[j - 1] == 0 else j
        if end > begin:
            out.append(data[begin:end])
        i = j
    return [nal for nal in out if nal]


def join_annexb(nals: Iterator[bytes] | list[bytes] | tuple[bytes, ...]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in nals)


def nal_type(codec: str, nal: bytes) -> int:
    if codec == H265:
        return (nal[0] >> 1) & 0x3F
    return nal[0] & 0x1F


def is_param_set(codec: str, nal: bytes) -> bool:
    t = nal_type(codec, nal)
    return t in (7, 8) if codec == H264 else t in (32, 33, 34)


def is_keyframe_nal(codec: str, nal: bytes) -> bool:
    t = nal_type(codec, nal)
    return t == 5 if codec == H264 else 16 <= t <= 21


def is_vcl(codec: str, nal: bytes) -> bool:
    t = nal_type(codec, nal)
    return 1 <= t <= 5 if codec == H264 else t < 32


def param_order(codec: str, nal: bytes) -> int:
    """Sort key so parameter sets come out VPS, SPS, PPS."""
    t = nal_type(codec, nal)
    return t if codec == H265 else {7: 0, 8: 1}.get(t, 2)


class ParamTracker:
    """Keeps the latest parameter sets seen on a stream and primes keyframes with them."""

    def __init__(self, codec: str = H264) -> None:
        self.codec = codec
        self._sets: dict[int, bytes] = {}

    @property
    def params(self) -> tuple[bytes, ...]:
        return tuple(sorted(self._sets.values(), key=lambda n: param_order(self.codec, n)))

    def observe(self, nals: list[bytes]) -> tuple[bool, bool]:
        """Record parameter sets in ``nals``; return (keyframe, has_param_sets)."""
        key = has_params = False
        for nal in nals:
            if is_param_set(self.codec, nal):
                self._sets[nal_type(self.codec, nal)] = nal
                has_params = True
            elif is_keyframe_nal(self.codec, nal):
                key = True
        return key, has_params

    def complete(self) -> bool:
        need = 3 if self.codec == H265 else 2
        return len(self._sets) >= need
