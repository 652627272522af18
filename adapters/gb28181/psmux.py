"""The GB/T 28181 PS muxer, for the device simulator, the tests and PS sent onwards (R1).

One access unit becomes one pack: a pack header, on keyframes the system header and the PSM
(one video stream E0 and one audio stream C0, whose stream type names the audio codec), then
PES packets: E0 for pictures, C0 for audio (a device's G.711 or ADTS AAC as it was).
"""

from __future__ import annotations

import struct
from functools import lru_cache

from gateway.media import AAC, H264, H265, PCMA, PCMU, AccessUnit

VIDEO_ID, AUDIO_ID = 0xE0, 0xC0
CODEC_TYPES = {H264: 0x1B, H265: 0x24, PCMA: 0x90, PCMU: 0x91, AAC: 0x0F}
PES_MAX_PAYLOAD = 65_400
_WRAP = 1 << 33


def _ts(prefix: int, t: int) -> bytes:
    t &= _WRAP - 1
    return bytes((
        (prefix << 4) | ((t >> 29) & 0x0E) | 1, (t >> 22) & 0xFF,
        ((t >> 14) & 0xFE) | 1, (t >> 7) & 0xFF, ((t << 1) & 0xFE) | 1,
    ))


def pack_header(scr: int, mux_rate: int = 50_000) -> bytes:
    """MPEG-2 pack header (14 bytes, no stuffing); ``scr`` in 90 kHz ticks."""
    scr &= _WRAP - 1
    return b"\x00\x00\x01\xba" + bytes((
        0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03), (scr >> 20) & 0xFF,
        ((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03), (scr >> 5) & 0xFF,
        ((scr << 3) & 0xF8) | 0x04, 0x01,
        (mux_rate >> 14) & 0xFF, (mux_rate >> 6) & 0xFF, ((mux_rate << 2) & 0xFC) | 0x03, 0xF8,
    ))


def _crc32_mpeg(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


@lru_cache(maxsize=16)
def system_and_psm(codec: str, audio: str = PCMA) -> bytes:
    """System header and PSM for one video stream (E0) plus one audio stream (C0, G.711A unless told)."""
    streams = bytes((VIDEO_ID, 0xE4, 0x00, AUDIO_ID, 0xC0, 0x20))  # P-STD bounds: 1 MiB video, 4 KiB audio
    body = bytes((0x81, 0x86, 0xA1, 0x04, 0xE1, 0x7F)) + streams  # rate bound 50000, 1 audio, 1 video
    system = b"\x00\x00\x01\xbb" + struct.pack("!H", len(body)) + body
    es_map = bytes((CODEC_TYPES[codec], VIDEO_ID, 0, 0, CODEC_TYPES[audio], AUDIO_ID, 0, 0))
    psm = b"\x00\x00\x01\xbc" + struct.pack("!H", 6 + len(es_map) + 4) + b"\xe0\xff\x00\x00"
    psm += struct.pack("!H", len(es_map)) + es_map
    return system + psm + struct.pack("!I", _crc32_mpeg(psm))


def mux_ps(unit: AccessUnit, scr: int, audio: str = PCMA) -> bytes:
    """One access unit as a GB/T 28181 PS pack: pack header, [system header + PSM], PES packets.
    ``audio`` is the stream's audio codec, named in the PSM a keyframe carries."""
    parts = [pack_header(scr)]
    sid = AUDIO_ID if unit.is_audio else VIDEO_ID
    if unit.keyframe:
        parts.append(system_and_psm(unit.codec, audio))
    data = unit.data
    for off in range(0, len(data), PES_MAX_PAYLOAD):
        payload = data[off:off + PES_MAX_PAYLOAD]
        if off == 0 and unit.dts != unit.pts:
            header = b"\x80\xc0\x0a" + _ts(3, unit.pts) + _ts(1, unit.dts)
        elif off == 0:
            header = b"\x80\x80\x05" + _ts(2, unit.pts)
        else:
            header = b"\x80\x00\x00"
        parts.append(bytes((0, 0, 1, sid)) + struct.pack("!H", len(header) + len(payload)) + header)
        parts.append(payload)
    return b"".join(parts)
