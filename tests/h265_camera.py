"""An H.265 camera for tests: real libx265 access units (PyAV) of a known picture, sent live.

The picture is split top red / bottom blue, so a client that decodes what it was sent can check
the colours came through (passthrough or transcoded). The GOP is encoded once and looped with
advancing timestamps, paced at the frame rate like a camera.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from fractions import Fraction

import av
import numpy as np

from adapters.base import Adapter, Channel
from gateway.media import H265, AccessUnit
from gateway.media.nal import ParamTracker, split_annexb

RED, BLUE = (230, 20, 20), (20, 20, 230)
FPS = 25
TICKS = 90_000 // FPS


def picture(width: int, height: int) -> np.ndarray:
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[: height // 2] = RED
    rgb[height // 2 :] = BLUE
    rgb[height // 2 - 8 : height // 2 + 8, : width // 8] = 255  # a moving-free marker: the picture is not flat
    return rgb


@functools.cache
def gop(width: int = 320, height: int = 240, frames: int = 50, keyint: int = 25) -> tuple[AccessUnit, ...]:
    """``frames`` H.265 access units, IDR every ``keyint``, VPS/SPS/PPS in front of each IDR."""
    ctx = av.CodecContext.create("libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 90_000), Fraction(FPS)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency",
                   "x265-params": f"log-level=error:keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0"
                                  ":repeat-headers=1"}
    ctx.open()
    base = av.VideoFrame.from_ndarray(picture(width, height), format="rgb24").reformat(format="yuv420p")
    tracker = ParamTracker(H265)
    units = []
    packets = []
    for i in range(frames):
        frame = base.reformat(format="yuv420p")
        frame.pts = i * TICKS
        frame.pict_type = av.video.frame.PictureType.I if i % keyint == 0 else av.video.frame.PictureType.NONE
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    for packet in packets:
        data = bytes(packet)
        key, _ = tracker.observe(split_annexb(data))
        units.append(AccessUnit(H265, packet.pts, packet.dts if packet.dts is not None else packet.pts, key, data,
                                tracker.params, 0.0))
    return tuple(units)


class H265Camera(Adapter):
    """One online channel sending H.265; ``report_codec`` says whether the channel announces it
    (an RTSP DESCRIBE does) or the codec is learnt only from the first access unit."""

    kind = "h265-test"

    def __init__(self, cid: str = "hevc-1", *, report_codec: bool = True, width: int = 320,
                 height: int = 240) -> None:
        super().__init__()
        self.cid, self.report_codec, self.size = cid, report_codec, (width, height)
        self.opened = 0
        self.hold: asyncio.Event | None = None  # when set by a test, media starts only once it is set

    def _channel(self) -> Channel:
        return Channel(self.cid, "H.265 camera", self.kind, online=True, codec=H265 if self.report_codec else None)

    async def start(self, ctx) -> None:  # noqa: ANN001
        await super().start(ctx)
        ctx.channel_seen(self._channel())

    def channels(self) -> list[Channel]:
        return [self._channel()]

    def owns(self, channel_id: str) -> bool:
        return channel_id == self.cid

    async def open(self, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        self.opened += 1
        units = await asyncio.to_thread(gop, *self.size)
        if self.hold is not None:
            await self.hold.wait()
        span = len(units) * TICKS
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            for unit in units:
                due = start + n / FPS
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # a camera's frame clock, not synchronisation
                shift = (n // len(units)) * span
                yield replace(unit, pts=unit.pts + shift, dts=unit.dts + shift, wallclock=time.time())
                n += 1


def colours(rgb: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Mean colour of the top and bottom quarter-bands (away from the edges and the marker)."""
    h = rgb.shape[0]
    top = rgb[h // 8 : 3 * h // 8, rgb.shape[1] // 4 :].reshape(-1, 3).mean(axis=0)
    bottom = rgb[5 * h // 8 : 7 * h // 8, rgb.shape[1] // 4 :].reshape(-1, 3).mean(axis=0)
    return tuple(int(v) for v in top), tuple(int(v) for v in bottom)


def looks_right(rgb: np.ndarray, tolerance: int = 30) -> bool:
    top, bottom = colours(rgb)
    return all(abs(a - b) <= tolerance for a, b in zip(top, RED)) and \
        all(abs(a - b) <= tolerance for a, b in zip(bottom, BLUE))
