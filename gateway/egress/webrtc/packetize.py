"""H.264 RTP payloads (RFC 6184, packetization-mode 1), built once per access unit per stream.

Parameter sets and other small NAL units are aggregated (STAP-A) ahead of the picture; NAL
units larger than the payload size are fragmented (FU-A). Every viewer shares the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.media import AccessUnit
from gateway.media.nal import nal_type, split_annexb

STAP_A = 24
FU_A = 28


@dataclass(slots=True, eq=False)
class Frame:
    """One access unit as RTP payloads; the last payload carries the marker bit."""

    payloads: list[bytes]
    pts: int  # 90 kHz
    keyframe: bool
    wallclock: float  # capture time (Unix seconds): RTCP SR maps RTP time to it
    size: int


def packetize(unit: AccessUnit, payload_size: int = 1200) -> Frame:
    nals = split_annexb(unit.data)
    if unit.keyframe and not any(nal_type(unit.codec, n) == 7 for n in nals):
        nals = [*unit.params, *nals]  # the cached keyframe must carry SPS/PPS
    payloads: list[bytes] = []
    pending: list[bytes] = []
    pending_size = 1
    for nal in nals:
        if len(nal) > payload_size:
            _flush(pending, payloads)
            pending_size = 1
            payloads += _fu_a(nal, payload_size)
        elif pending_size + 2 + len(nal) > payload_size:
            _flush(pending, payloads)
            pending.append(nal)
            pending_size = 3 + len(nal)
        else:
            pending.append(nal)
            pending_size += 2 + len(nal)
    _flush(pending, payloads)
    return Frame(payloads, unit.pts, unit.keyframe, unit.wallclock, sum(map(len, payloads)))


def _flush(pending: list[bytes], out: list[bytes]) -> None:
    if len(pending) == 1:
        out.append(pending[0])
    elif pending:
        nri = max(n[0] & 0x60 for n in pending)
        out.append(bytes([nri | STAP_A]) + b"".join(len(n).to_bytes(2, "big") + n for n in pending))
    pending.clear()


def _fu_a(nal: bytes, payload_size: int) -> list[bytes]:
    head = nal[0]
    indicator = bytes([(head & 0xE0) | FU_A])
    kind = head & 0x1F
    body = memoryview(nal)[1:]
    chunk = payload_size - 2
    count = -(-len(body) // chunk)
    size = -(-len(body) // count)  # even fragments
    out = []
    for i in range(count):
        part = body[i * size : (i + 1) * size]
        flags = (0x80 if i == 0 else 0) | (0x40 if i == count - 1 else 0)
        out.append(indicator + bytes([flags | kind]) + part)
    return out
