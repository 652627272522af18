"""Synthetic test cameras: the demo's cameras and the benchmarks' load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
import time
from typing import TYPE_CHECKING

from adapters.base import Adapter, Channel
from gateway.config import CameraConfig
from gateway.media import CLOCK_RATE, AccessUnit, H264

from .encoder import PatternEncoder, PatternSpec

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["PatternEncoder", "PatternSpec", "SyntheticAdapter", "setup"]


class SyntheticAdapter(Adapter):
    kind = "synthetic"

    def __init__(self, cameras: list[CameraConfig]) -> None:
        super().__init__()
        self.cameras = {c.id: c for c in cameras}
        self.keyframe_requests = 0
        self._force_key: set[str] = set()
        self._loops: dict[str, list[AccessUnit]] = {}

    async def start(self, ctx) -> None:  # noqa: ANN001
        await super().start(ctx)
        for cam in self.cameras.values():
            ctx.channel_seen(Channel(cam.id, cam.name or cam.id, self.kind, online=True, codec=H264))

    def channels(self) -> list[Channel]:
        return [Channel(c.id, c.name or c.id, self.kind, online=True, codec=H264) for c in self.cameras.values()]

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.cameras

    async def request_keyframe(self, channel_id: str) -> bool:
        """Live-encoded cameras honour PLI: the next picture is an IDR."""
        cam = self.cameras[channel_id]
        if cam.loop_seconds:
            return False
        self.keyframe_requests += 1
        self._force_key.add(channel_id)
        return True

    def spec(self, cam: CameraConfig) -> PatternSpec:
        return PatternSpec(cam.name or cam.id, cam.width, cam.height, cam.fps, cam.gop, cam.bitrate, cam.noise)

    async def open(self, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        cam = self.cameras[channel_id]
        if cam.loop_seconds:
            source = self._replay(cam)
        else:
            source = self._live(cam)
        async for unit in source:
            yield unit

    async def _live(self, cam: CameraConfig) -> AsyncIterator[AccessUnit]:
        encoder = PatternEncoder(self.spec(cam))
        loop = asyncio.get_running_loop()
        start = loop.time()
        frame = 0
        while True:
            if cam.id in self._force_key:
                self._force_key.discard(cam.id)
                encoder.force_keyframe()
            for unit in await asyncio.to_thread(encoder.encode):
                yield unit
            frame += 1
            await asyncio.sleep(max(0.0, start + frame / cam.fps - loop.time()))

    async def _replay(self, cam: CameraConfig) -> AsyncIterator[AccessUnit]:
        units = self._loops.get(cam.id)
        if units is None:
            units = await asyncio.to_thread(_prerender, self.spec(cam), cam.loop_seconds)
            self._loops[cam.id] = units
        loop = asyncio.get_running_loop()
        start = loop.time()
        step = CLOCK_RATE // cam.fps
        frame = 0
        while True:
            for unit in units:
                ts = frame * step
                yield replace(unit, pts=ts, dts=ts, wallclock=time.time())
                frame += 1
                await asyncio.sleep(max(0.0, start + frame / cam.fps - loop.time()))


def _prerender(spec: PatternSpec, seconds: float) -> list[AccessUnit]:
    """Whole GOPs of encoded pictures, so the replay loops on a keyframe boundary."""
    encoder = PatternEncoder(spec)
    frames = max(spec.gop, int(seconds * spec.fps) // spec.gop * spec.gop)
    units: list[AccessUnit] = []
    while len(units) < frames:
        units += encoder.encode()
    return units[:frames]


def setup(gw: Gateway) -> None:
    cams = [c for c in gw.config.cameras if c.kind == "synthetic"]
    if cams:
        gw.add_adapter(SyntheticAdapter(cams))
