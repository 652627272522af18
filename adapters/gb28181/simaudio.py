"""The simulator's sound: a steady tone as G.711 (A-law or µ-law), in step with its pictures.

A real camera with audio on interleaves audio PES with the video in its PS stream; here each
picture is followed by the audio that plays until the next one, timestamped on the same 90 kHz
clock, so a receiver can check the tone's pitch and its sync with the picture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache

import numpy as np

from gateway.media import CLOCK_RATE, PCMA, PCMU, AccessUnit

RATE = 8000
TONE_HZ = 1000.0
AMPLITUDE = 8000  # of 32767: well inside both laws' range


@lru_cache(maxsize=2)
def _table(codec: str) -> np.ndarray:
    """G.711 code for every 16-bit sample (ITU-T G.711 segment encoding), indexed by the sample's
    unsigned 16-bit pattern."""
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    if codec == PCMA:
        value = pcm >> 3
        mask = np.where(value >= 0, 0xD5, 0x55)
        value = np.where(value >= 0, value, -value - 1)
        seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), value)
        code = np.where(seg >= 8, 0x7F,
                        (np.minimum(seg, 7) << 4) | ((value >> np.where(seg < 2, 1, np.minimum(seg, 7))) & 0x0F))
    elif codec == PCMU:
        value = pcm >> 2
        mask = np.where(value >= 0, 0xFF, 0x7F)
        value = np.minimum(np.abs(value), 8159) + (0x84 >> 2)
        seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), value)
        code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((value >> (np.minimum(seg, 7) + 1)) & 0x0F))
    else:
        raise ValueError(f"the simulator sends G.711 audio (pcma, pcmu), not {codec!r}")
    table = (code ^ mask).astype(np.uint8)
    return np.roll(table, -32768)  # index by the sample's two's-complement bits


def encode_g711(codec: str, samples: np.ndarray) -> bytes:
    """16-bit signed samples as G.711 bytes."""
    return _table(codec)[samples.astype(np.int16).view(np.uint16)].tobytes()


class Tone:
    """The tone's samples, continuous in phase from one call to the next."""

    def __init__(self, codec: str, hz: float = TONE_HZ) -> None:
        _table(codec)  # refuse an unknown codec at once
        self.codec, self.hz = codec, hz
        self.sent = 0  # samples so far

    def next(self, count: int) -> bytes:
        t = (self.sent + np.arange(count)) / RATE
        self.sent += count
        return encode_g711(self.codec, np.rint(AMPLITUDE * np.sin(2 * np.pi * self.hz * t)))


async def with_tone(units: AsyncIterator[AccessUnit], codec: str, fps: int = 25) -> AsyncIterator[AccessUnit]:
    """``units`` with, after each picture, the tone up to the next picture's time (one audio unit of
    8000/fps samples, on the pictures' 90 kHz timeline)."""
    tone = Tone(codec)
    first: int | None = None
    last_dts: int | None = None
    async for unit in units:
        yield unit
        if unit.is_audio:
            continue
        step = unit.dts - last_dts if last_dts is not None and unit.dts > last_dts else CLOCK_RATE // fps
        last_dts = unit.dts
        if first is None:
            first = unit.dts
        due = (unit.dts - first + step) * RATE // CLOCK_RATE - tone.sent  # samples until the next picture
        if due > 0:
            pts = first + tone.sent * CLOCK_RATE // RATE
            yield AccessUnit(codec, pts, pts, False, tone.next(due), (), unit.wallclock)
