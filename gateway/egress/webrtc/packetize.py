"""RTP payloads for H.264 (RFC 6184, packetization-mode 1) and H.265 (RFC 7798), and for G.711
audio (RFC 3551 PCMA/PCMU), built once per access unit per stream.

Parameter sets and other small NAL units are aggregated (H.264 STAP-A, H.265 AP) ahead of the
picture; NAL units larger than the payload size are fragmented (FU-A, H.265 FU). The two formats
differ only in the NAL header (one byte or two) and the aggregation/fragmentation types. Every
viewer shares the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.media import AUDIO_RATES, CLOCK_RATE, H265, AccessUnit
from gateway.media.nal import is_param_set, nal_type, split_annexb

G711_PACKET = 160  # samples (bytes) per audio packet: 20 ms, the ptime browsers and ZLMediaKit use
STAP_A = 24
FU_A = 28
H265_AP = 48
H265_FU = 49


@dataclass(slots=True, eq=False)
class Frame:
    """One access unit as RTP payloads; the last payload carries the marker bit."""

    payloads: list[bytes]
    pts: int  # 90 kHz
    keyframe: bool
    wallclock: float  # capture time (Unix seconds): RTCP SR maps RTP time to it
    size: int
    codec: str  # H264 or H265: the payload format, so the viewer picks the payload type


@dataclass(slots=True, eq=False)
class AudioFrame:
    """One audio unit as RTP payloads of at most 20 ms each."""

    payloads: list[bytes]
    offsets: list[int]  # each payload's first sample, from the unit's start (codec clock)
    start: int  # the unit's first sample on the codec clock (its pts converted)
    wallclock: float
    size: int
    codec: str  # PCMA or PCMU


def packetize_audio(unit: AccessUnit) -> AudioFrame:
    """A G.711 unit cut into 20 ms payloads (one byte per sample, so offsets are byte offsets)."""
    data = unit.data
    offsets = list(range(0, len(data), G711_PACKET))
    return AudioFrame([data[i:i + G711_PACKET] for i in offsets], offsets,
                      unit.pts * AUDIO_RATES[unit.codec] // CLOCK_RATE, unit.wallclock, len(data), unit.codec)


def packetize(unit: AccessUnit, payload_size: int = 1200) -> Frame:
    h265 = unit.codec == H265
    nals = split_annexb(unit.data)
    if unit.keyframe and not any(is_param_set(unit.codec, n) for n in nals):
        nals = [*unit.params, *nals]  # the cached keyframe must carry its parameter sets
    header = 2 if h265 else 1
    payloads: list[bytes] = []
    pending: list[bytes] = []
    pending_size = header
    for nal in nals:
        if len(nal) > payload_size:
            _flush(pending, payloads, h265)
            pending_size = header
            payloads += _fu_h265(nal, payload_size) if h265 else _fu_a(nal, payload_size)
        elif pending_size + 2 + len(nal) > payload_size:
            _flush(pending, payloads, h265)
            pending.append(nal)
            pending_size = header + 2 + len(nal)
        else:
            pending.append(nal)
            pending_size += 2 + len(nal)
    _flush(pending, payloads, h265)
    return Frame(payloads, unit.pts, unit.keyframe, unit.wallclock, sum(map(len, payloads)), unit.codec)


def _flush(pending: list[bytes], out: list[bytes], h265: bool) -> None:
    if len(pending) == 1:
        out.append(pending[0])
    elif pending:
        if h265:  # AP header: F = any F, type 48, lowest layer id and temporal id of the units
            layer = min((n[0] & 0x01) << 5 | n[1] >> 3 for n in pending)
            tid = min(n[1] & 0x07 for n in pending)
            f = max(n[0] & 0x80 for n in pending)
            head = bytes([f | H265_AP << 1 | layer >> 5, (layer & 0x1F) << 3 | tid])
        else:
            head = bytes([max(n[0] & 0x60 for n in pending) | STAP_A])
        out.append(head + b"".join(len(n).to_bytes(2, "big") + n for n in pending))
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


def _fu_h265(nal: bytes, payload_size: int) -> list[bytes]:
    """RFC 7798 §4.4.3: PayloadHdr (the NAL header with type 49), FU header (S, E, type), data."""
    indicator = bytes([(nal[0] & 0x81) | H265_FU << 1, nal[1]])
    kind = nal_type(H265, nal)
    body = memoryview(nal)[2:]
    chunk = payload_size - 3
    count = -(-len(body) // chunk)
    size = -(-len(body) // count)
    out = []
    for i in range(count):
        part = body[i * size : (i + 1) * size]
        flags = (0x80 if i == 0 else 0) | (0x40 if i == count - 1 else 0)
        out.append(indicator + bytes([flags | kind]) + part)
    return out
