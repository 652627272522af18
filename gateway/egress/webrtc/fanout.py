"""Packetise once, send many: one hub reader per camera feeds every WebRTC viewer of it.

Each access unit becomes RTP payloads once (``packetize``); the fan-out keeps the current GOP
of those payloads, so a viewer that joins or asks for a picture (PLI/FIR) starts from the cached
keyframe with its parameter sets instead of waiting for the camera's next one, and asks the
adapter for a fresh IDR where the source can make one.

An H.265 camera's payloads go as they are (RFC 7798) to the viewers whose browser negotiated
H.265. For the others, ``[webrtc] h265`` decides: ``transcode`` runs one H.264 transcode for the
camera (a second hub reader, so it skips ahead on its own if it falls behind) shared by all of
them, started with the first such viewer and stopped with the last; ``refuse`` ends their
session with the reason. Either way a viewer is never left with a codec it cannot decode and
no word why.

The camera's G.711 audio is cut into 20 ms payloads once and sent live to the viewers whose
answer has an audio track (not replayed with the GOP: a burst of old sound is noise). AAC is not
sent (browsers cannot play it over WebRTC): counted per unit, logged once per fan-out. A
watermarked session carries the re-encoded pictures only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import logging
import time
from typing import TYPE_CHECKING

from gateway.media import AUDIO_RATES, H265, AccessUnit, Reader
from gateway.media.transcode import Transcoder, transcoded
from gateway.media.watermark import watermarked
from gateway.policy import LIVE, Decision, require
from gateway.tasks import cancel_and_wait

from .config import WebRtcConfig
from .packetize import Frame, packetize, packetize_audio
from .viewer import Viewer

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

Refuse = Callable[[Viewer, str, str], None]  # (viewer, error code, message): end its session saying why


class Lane:
    """Frames packetised once for the viewers a feed serves, with the current GOP cached."""

    MAX_GOP_BYTES = 16 * 1024 * 1024

    def __init__(self) -> None:
        self.gop: list[Frame] = []
        self._gop_bytes = 0
        self.frames = 0

    def add(self, frame: Frame) -> None:
        self.frames += 1
        if frame.keyframe:
            self.gop = [frame]
            self._gop_bytes = frame.size
        elif self.gop and self._gop_bytes + frame.size <= self.MAX_GOP_BYTES:
            self.gop.append(frame)
            self._gop_bytes += frame.size

    def clear(self) -> None:
        self.gop = []
        self._gop_bytes = 0


async def _only(units: AsyncIterator[AccessUnit], codec: str) -> AsyncIterator[AccessUnit]:
    async for unit in units:
        if unit.codec == codec:
            yield unit


async def _pictures(units: AsyncIterator[AccessUnit]) -> AsyncIterator[AccessUnit]:
    async for unit in units:
        if not unit.is_audio:
            yield unit


class CameraFanout:
    """The viewers of one camera, fed by one hub reader that lives exactly while they do.

    With a ``watermark`` the fan-out belongs to a single relative's session: its pictures are
    re-encoded with that text burnt in (R13), never shared with another viewer."""

    def __init__(self, gw: Gateway, camera_id: str, cfg: WebRtcConfig, watermark: str | None = None,
                 on_refuse: Refuse | None = None) -> None:
        self.gw, self.camera_id, self.cfg, self.watermark = gw, camera_id, cfg, watermark
        self._on_refuse = on_refuse
        self.viewers: set[Viewer] = set()
        self.native = Lane()  # the source's own codec
        self.h264 = Lane()  # the H.265 source transcoded, for viewers without H.265
        self.codec: str | None = None  # the source's video codec, as its last picture had it
        self.audio_codec: str | None = None  # its audio codec, once audio came
        self.audio_frames = 0
        self.audio_unsent = 0  # audio units no browser can play (AAC)
        self._access: Decision | None = None  # the live decision the readers were opened under
        self._reader: Reader | None = None
        self._task: asyncio.Task[None] | None = None
        self._transcode_reader: Reader | None = None
        self._transcode_task: asyncio.Task[None] | None = None
        self._last_key_request = 0.0

    @property
    def frames(self) -> int:
        return self.native.frames + self.h264.frames

    @property
    def transcoding(self) -> bool:
        return self._transcode_reader is not None

    def needs_transcode(self, viewer: Viewer) -> bool:
        return self.codec == H265 and not viewer.accepts(H265)

    def add(self, viewer: Viewer, access: Decision) -> None:
        """A viewer joins under the gate's live decision for this camera (checked here, where the
        viewer is added, whether or not the camera's reader is already running)."""
        require(access, self.camera_id, LIVE)
        if self._reader is None:
            self._access = access
            self._reader = self.gw.hub.subscribe(access, self.camera_id, name="webrtc", limits=self.gw.reader_limits)
            self._task = asyncio.get_running_loop().create_task(self._run(self._reader),
                                                                name=f"webrtc:{self.camera_id}")
        self.viewers.add(viewer)
        self._serve_h265()

    def remove(self, viewer: Viewer) -> None:
        """The last viewer leaving closes the reader at once, even before a first frame came, so
        the stream can stop after its linger instead of re-inviting a camera nobody watches."""
        self._drop(viewer)
        self._serve_h265()

    def _drop(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        viewer.close()
        if not self.viewers and self._reader is not None:
            self._reader.close()
            self._reader = None

    def on_ready(self, viewer: Viewer) -> None:
        """DTLS is up: start the viewer from the cached GOP (instant start)."""
        viewer.start(list(self._lane_of(viewer).gop))

    def on_keyframe_request(self, viewer: Viewer) -> None:
        """PLI/FIR: replay the cached GOP to that viewer now, and ask the source for an IDR."""
        self.gw.metrics.inc("vsgw_webrtc_keyframe_requests_total", camera=self.camera_id)
        now = time.monotonic()
        if now - viewer.replayed_at >= 0.5:  # a burst of PLIs gets one replay
            viewer.replayed_at = now
            viewer.start(list(self._lane_of(viewer).gop))
        if now - self._last_key_request >= self.cfg.keyframe_min_interval:
            self._last_key_request = now
            asyncio.get_running_loop().create_task(self._request_keyframe())

    def _lane_of(self, viewer: Viewer) -> Lane:
        return self.h264 if self.needs_transcode(viewer) else self.native

    async def _request_keyframe(self) -> None:
        try:
            await self.gw.registry.adapter_for(self.camera_id).request_keyframe(self.camera_id)
        except Exception as exc:  # the source cannot; the cached GOP already answered
            log.debug("keyframe request for %s failed: %s", self.camera_id, exc)

    async def _run(self, reader: Reader) -> None:
        size = self.cfg.payload_size
        units: AsyncIterator[AccessUnit] = reader if self.watermark is None else \
            watermarked(_pictures(reader), self.watermark, metrics=self.gw.metrics)
        try:
            async for unit in units:
                if reader.closed:
                    break
                if unit.is_audio:
                    self._audio(unit)
                    continue
                if unit.codec != self.codec:
                    self.codec = unit.codec
                    self._serve_h265()
                frame = packetize(unit, size)
                self.native.add(frame)
                for viewer in self.viewers:
                    viewer.push(frame)  # a viewer skips a codec it did not negotiate
        finally:
            if units is not reader:
                await units.aclose()  # type: ignore[attr-defined]
            reader.close()
            if self._reader is reader:
                self._reader = None

    def _audio(self, unit: AccessUnit) -> None:
        if self.audio_codec != unit.codec:
            self.audio_codec = unit.codec
            if unit.codec not in AUDIO_RATES:
                log.info("camera %s sends %s audio, which browsers cannot play over WebRTC: not sent",
                         self.camera_id, unit.codec.upper())
        if unit.codec not in AUDIO_RATES:
            self.audio_unsent += 1
            self.gw.metrics.inc("vsgw_webrtc_audio_unsent_total", camera=self.camera_id, codec=unit.codec)
            return
        frame = packetize_audio(unit)
        self.audio_frames += 1
        for viewer in self.viewers:
            viewer.push_audio(frame)

    # -- viewers without H.265 -----------------------------------------------------------------
    def _serve_h265(self) -> None:
        """Runs the transcode while an H.265 source has viewers that need it (or refuses them)."""
        waiting = [v for v in self.viewers if self.needs_transcode(v)]
        if waiting and self.cfg.h265 == "refuse":
            for viewer in waiting:
                self._refuse(viewer, "h265_refused", f"camera {self.camera_id} sends H.265, which this browser "
                             "did not offer, and the gateway does not transcode it (webrtc.h265 = refuse)")
        elif waiting and self._transcode_reader is None and self._access is not None:
            access = self._access
            reader = self._transcode_reader = self.gw.hub.subscribe(
                access, self.camera_id, name="webrtc-h264", limits=self.gw.reader_limits)
            self._transcode_task = asyncio.get_running_loop().create_task(
                self._transcode(reader), name=f"webrtc-h264:{self.camera_id}")
        elif not waiting and self._transcode_reader is not None:
            self._stop_transcode()

    def _stop_transcode(self) -> None:
        if self._transcode_reader is not None:
            self._transcode_reader.close()
            self._transcode_reader = None
        if self._transcode_task is not None:
            self._transcode_task.cancel()
            self._transcode_task = None
        self.h264.clear()

    async def _transcode(self, reader: Reader) -> None:
        """One H.265 → H.264 transcode for every viewer of this camera that needs it."""
        cam = self.camera_id
        transcoder = Transcoder(threads=self.cfg.transcode_threads)
        log.info("camera %s: transcoding H.265 to H.264 for viewers without H.265 (webrtc.h265 = transcode)", cam)
        self.gw.metrics.inc("vsgw_webrtc_transcodes_total", camera=cam)
        size = self.cfg.payload_size
        try:
            async for unit in transcoded(_only(reader, H265), transcoder, metrics=self.gw.metrics,
                                         labels={"camera": cam}):
                if reader.closed:
                    break
                frame = packetize(unit, size)
                self.h264.add(frame)
                for viewer in self.viewers:
                    if self.needs_transcode(viewer):
                        viewer.push(frame)
        except Exception as exc:  # the decoder or encoder failed: say so to the viewers it served
            log.warning("camera %s: H.265 to H.264 transcode failed: %s: %s", cam, type(exc).__name__, exc)
            for viewer in [v for v in self.viewers if self.needs_transcode(v)]:
                self._refuse(viewer, "transcode_failed",
                             f"camera {cam} sends H.265 and its transcode to H.264 failed ({type(exc).__name__})")
        finally:
            reader.close()
            if self._transcode_reader is reader:
                self._transcode_reader = None
                self._transcode_task = None
            log.info("camera %s: H.265 transcode stopped after %d pictures (%s fps)", cam, transcoder.frames,
                     transcoder.fps)

    def _refuse(self, viewer: Viewer, code: str, message: str) -> None:
        self.gw.metrics.inc("vsgw_webrtc_rejected_total", reason=code)
        log.info("webrtc viewer %s of %s refused: %s", viewer.session, self.camera_id, message)
        viewer.refused = (code, message)
        self._drop(viewer)
        if self._on_refuse is not None:
            self._on_refuse(viewer, code, message)

    async def close(self) -> None:
        for viewer in list(self.viewers):
            self.remove(viewer)
        self._stop_transcode()
        await cancel_and_wait(self._task)
