"""Packetise once, send many: one hub reader per camera feeds every WebRTC viewer of it.

Each access unit becomes RTP payloads once (``packetize``); the fan-out keeps the current GOP
of those payloads, so a viewer that joins or asks for a picture (PLI/FIR) starts from the cached
keyframe with SPS/PPS instead of waiting for the camera's next one, and asks the adapter for a
fresh IDR where the source can make one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from gateway.media import H264, StreamClosed
from gateway.tasks import cancel_and_wait

from .config import WebRtcConfig
from .packetize import Frame, packetize
from .viewer import Viewer

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)


class CameraFanout:
    def __init__(self, gw: Gateway, camera_id: str, cfg: WebRtcConfig) -> None:
        self.gw, self.camera_id, self.cfg = gw, camera_id, cfg
        self.viewers: set[Viewer] = set()
        self.gop: list[Frame] = []
        self._gop_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._last_key_request = 0.0
        self.frames = 0

    def add(self, viewer: Viewer) -> None:
        self.viewers.add(viewer)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"webrtc:{self.camera_id}")

    def remove(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        viewer.close()

    def on_ready(self, viewer: Viewer) -> None:
        """DTLS is up: start the viewer from the cached GOP (instant start)."""
        viewer.start(list(self.gop))

    def on_keyframe_request(self, viewer: Viewer) -> None:
        """PLI/FIR: replay the cached GOP to that viewer now, and ask the source for an IDR."""
        self.gw.metrics.inc("vsgw_webrtc_keyframe_requests_total", camera=self.camera_id)
        now = time.monotonic()
        if now - viewer.replayed_at >= 0.5:  # a burst of PLIs gets one replay
            viewer.replayed_at = now
            viewer.start(list(self.gop))
        if now - self._last_key_request >= self.cfg.keyframe_min_interval:
            self._last_key_request = now
            asyncio.get_running_loop().create_task(self._request_keyframe())

    async def _request_keyframe(self) -> None:
        try:
            await self.gw.registry.adapter_for(self.camera_id).request_keyframe(self.camera_id)
        except Exception as exc:  # the source cannot; the cached GOP already answered
            log.debug("keyframe request for %s failed: %s", self.camera_id, exc)

    async def _run(self) -> None:
        reader = self.gw.hub.subscribe(self.camera_id, name="webrtc", limits=self.gw.reader_limits)
        size = self.cfg.payload_size
        try:
            while self.viewers:
                try:
                    unit = await reader.get()
                except StreamClosed:
                    break
                if unit.codec != H264:
                    self.gw.metrics.inc("vsgw_webrtc_rejected_total", reason="codec")
                    continue
                frame = packetize(unit, size)
                self._cache(frame)
                self.frames += 1
                for viewer in self.viewers:
                    viewer.push(frame)
        finally:
            reader.close()
            self._task = None

    def _cache(self, frame: Frame) -> None:
        if frame.keyframe:
            self.gop = [frame]
            self._gop_bytes = frame.size
        elif self.gop and self._gop_bytes + frame.size <= 16 * 1024 * 1024:
            self.gop.append(frame)
            self._gop_bytes += frame.size

    async def close(self) -> None:
        for viewer in list(self.viewers):
            self.remove(viewer)
        await cancel_and_wait(self._task)
