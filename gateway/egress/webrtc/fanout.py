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

from collections.abc import AsyncIterator

from gateway.media import H264, AccessUnit, Reader
from gateway.media.watermark import watermarked
from gateway.policy import LIVE, Decision, require
from gateway.tasks import cancel_and_wait

from .config import WebRtcConfig
from .packetize import Frame, packetize
from .viewer import Viewer

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)


class CameraFanout:
    """The viewers of one camera, fed by one hub reader that lives exactly while they do.

    With a ``watermark`` the fan-out belongs to a single relative's session: its pictures are
    re-encoded with that text burnt in (R13), never shared with another viewer."""

    def __init__(self, gw: Gateway, camera_id: str, cfg: WebRtcConfig, watermark: str | None = None) -> None:
        self.gw, self.camera_id, self.cfg, self.watermark = gw, camera_id, cfg, watermark
        self.viewers: set[Viewer] = set()
        self.gop: list[Frame] = []
        self._gop_bytes = 0
        self._reader: Reader | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_key_request = 0.0
        self.frames = 0

    def add(self, viewer: Viewer, access: Decision) -> None:
        """A viewer joins under the gate's live decision for this camera (checked here, where the
        viewer is added, whether or not the camera's reader is already running)."""
        require(access, self.camera_id, LIVE)
        if self._reader is None:
            self._reader = self.gw.hub.subscribe(access, self.camera_id, name="webrtc", limits=self.gw.reader_limits)
            self._task = asyncio.get_running_loop().create_task(self._run(self._reader),
                                                                name=f"webrtc:{self.camera_id}")
        self.viewers.add(viewer)

    def remove(self, viewer: Viewer) -> None:
        """The last viewer leaving closes the reader at once, even before a first frame came, so
        the stream can stop after its linger instead of re-inviting a camera nobody watches."""
        self.viewers.discard(viewer)
        viewer.close()
        if not self.viewers and self._reader is not None:
            self._reader.close()
            self._reader = None

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

    async def _run(self, reader: Reader) -> None:
        size = self.cfg.payload_size
        units: AsyncIterator[AccessUnit] = reader if self.watermark is None else \
            watermarked(reader, self.watermark, metrics=self.gw.metrics)
        try:
            async for unit in units:
                if reader.closed:
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
            if units is not reader:
                await units.aclose()  # type: ignore[attr-defined]
            reader.close()
            if self._reader is reader:
                self._reader = None

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
