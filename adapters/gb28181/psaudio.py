"""Audio in GB/T 28181 PS: which PSM stream types carry what, and how long a PES of it plays."""

from __future__ import annotations

from gateway.media import AAC, CLOCK_RATE, PCMA, PCMU

AUDIO_TYPES = {0x90: PCMA, 0x91: PCMU, 0x0F: AAC}  # audio stream types the gateway carries
AUDIO_NAMES = {0x92: "G.722", 0x93: "G.723.1", 0x99: "G.729"}  # named in the log when refused
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def audio_ticks(codec: str, data: bytes) -> int:
    """How long ``data`` plays, in 90 kHz ticks: G.711 is one byte per 8 kHz sample; ADTS AAC is
    1024 samples per frame at the rate its header states."""
    if codec != AAC:
        return len(data) * CLOCK_RATE // 8000
    ticks, i = 0, 0
    while i + 7 <= len(data) and data[i] == 0xFF and data[i + 1] & 0xF0 == 0xF0:
        index = (data[i + 2] >> 2) & 0x0F
        rate = _AAC_RATES[index] if index < len(_AAC_RATES) else 8000
        ticks += 1024 * CLOCK_RATE // rate
        size = ((data[i + 3] & 0x03) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        if size < 7:
            break
        i += size
    return ticks
