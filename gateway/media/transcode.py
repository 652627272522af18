"""Decode → (paint) → encode to constrained-baseline H.264, the one re-encoding pipeline.

Two users: a relative's watermark (the painter burns the grant's text into each picture) and a
browser that cannot decode a camera's H.265 (no painter: the picture is passed straight to the
encoder). Either way the output keeps the source's timestamps, capture times and keyframes (an
IDR exactly where the source has one, so the GOP is the source's) and its frame rate, and is
packetisable for WebRTC at once (parameter sets repeated on every IDR).

Decoding and encoding run in one worker thread per pipeline, never on the event loop. The input is
pulled only as fast as that worker keeps up: for live video pass a :class:`~gateway.media.stream.Reader`,
whose bounded queue is the pipeline's only buffer and which skips to the next keyframe when the
worker falls behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av

from gateway.metrics import Metrics

from .nal import ParamTracker, split_annexb
from .unit import CLOCK_RATE, H264, H265, AccessUnit

Painter = Callable[[av.VideoFrame, int], av.VideoFrame]  # (yuv420p picture, pts) -> picture to encode

_DECODERS = {H264: "h264", H265: "hevc"}
_BITS_PER_PIXEL = 0.3  # VBV cap (6.9 Mbit/s at 720p25): peaks only, CRF sets the usual rate


class Transcoder:
    """Decode, paint, re-encode. Not thread-safe: one per pipeline, used from its worker thread.

    ``purpose`` names the pipeline in errors and metrics (``cannot watermark 'mjpeg' video``)."""

    def __init__(self, paint: Painter | None = None, *, fps: Fraction | int | None = None, threads: int = 1,
                 purpose: str = "transcode") -> None:
        self._paint = paint
        self._fps = Fraction(fps) if fps else None
        self._threads = threads
        self.purpose = purpose
        self._decoder: av.CodecContext | None = None
        self._encoder: av.CodecContext | None = None
        self._codec: str | None = None
        self._params = ParamTracker(H264)
        self._pending: dict[int, tuple[int, bool, float]] = {}  # pts -> (dts, keyframe, wallclock)
        self._dts: deque[int] = deque()  # decode-order dts still owed to an output picture
        self._sent: dict[int, float] = {}  # pts -> wallclock of pictures inside the encoder
        self.undecodable = 0  # access units that produced no picture
        self.frames = 0

    @property
    def fps(self) -> Fraction | None:
        """The frame rate the encoder runs at (known once the first picture was decoded)."""
        return self._encoder.framerate if self._encoder is not None else None

    def push(self, unit: AccessUnit) -> list[AccessUnit]:
        """One source access unit in; the H.264 access units ready so far out (usually one)."""
        if self._decoder is None or unit.codec != self._codec:
            self._open_decoder(unit.codec)
        if unit.pts in self._pending:  # a repeated timestamp: the earlier picture is lost
            self._forget(unit.pts)
        self._pending[unit.pts] = (unit.dts, unit.keyframe, unit.wallclock)
        self._dts.append(unit.dts)
        packet = av.Packet(unit.data)
        packet.pts, packet.dts, packet.time_base = unit.pts, unit.dts, Fraction(1, CLOCK_RATE)
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError:
            self._forget(unit.pts)
            return []
        return [out for frame in frames for out in self._picture(frame)]

    def flush(self) -> list[AccessUnit]:
        """The pictures the decoder and encoder still hold, at the end of the input."""
        out: list[AccessUnit] = []
        if self._decoder is not None:
            for frame in self._decoder.decode(None):
                out += self._picture(frame)
        if self._encoder is not None:
            out += [self._unit(p) for p in self._encoder.encode(None)]
        self.undecodable += len(self._pending)
        self._pending.clear()
        return out

    # -- internals ---------------------------------------------------------------------------
    def _open_decoder(self, codec: str) -> None:
        if codec not in _DECODERS:
            raise ValueError(f"cannot {self.purpose} {codec!r} video; supported: {', '.join(_DECODERS)}")
        self._decoder = av.CodecContext.create(_DECODERS[codec], "r")
        self._decoder.thread_type = "SLICE"  # frame threading would hold pictures back
        self._decoder.thread_count = self._threads
        self._codec = codec

    def _forget(self, pts: int) -> None:
        dts, _, _ = self._pending.pop(pts)
        self._dts.remove(dts)
        self.undecodable += 1

    def _picture(self, frame: av.VideoFrame) -> list[AccessUnit]:
        pts = frame.pts
        if pts is None or pts not in self._pending:
            self.undecodable += 1
            return []
        for older in [p for p in self._pending if p < pts]:  # pictures come out in pts order
            self._forget(older)
        _, keyframe, wallclock = self._pending.pop(pts)
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if self._encoder is None or (frame.width, frame.height) != (self._encoder.width, self._encoder.height):
            self._open_encoder(frame.width, frame.height)
        if self._paint is not None:
            frame = self._paint(frame, pts)
        frame.pts, frame.time_base = pts, Fraction(1, CLOCK_RATE)
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        self._sent[pts] = wallclock
        self.frames += 1
        return [self._unit(p) for p in self._encoder.encode(frame)]

    def _open_encoder(self, width: int, height: int) -> None:
        fps = self._fps or (self._decoder.framerate if self._decoder.framerate else Fraction(25))
        cap = int(width * height * fps * _BITS_PER_PIXEL / 1000)
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base, ctx.framerate = Fraction(1, CLOCK_RATE), fps
        ctx.max_b_frames = 0
        ctx.thread_count = self._threads
        ctx.options = {
            "preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "forced-idr": "1",
            # keyframes exactly where the source has them: none of x264's own
            "x264-params": f"keyint=infinite:scenecut=0:repeat-headers=1:crf=23"
                           f":vbv-maxrate={cap}:vbv-bufsize={cap}",
        }
        ctx.open()
        self._encoder = ctx
        self._sent.clear()

    def _unit(self, packet: av.Packet) -> AccessUnit:
        data = bytes(packet)
        keyframe, _ = self._params.observe(split_annexb(data))
        return AccessUnit(
            codec=H264, pts=packet.pts, dts=self._dts.popleft(), keyframe=keyframe, data=data,
            params=self._params.params, wallclock=self._sent.pop(packet.pts),
        )


async def transcoded(units: AsyncIterator[AccessUnit], transcoder: Transcoder, *,
                     metrics: Metrics | None = None, labels: dict[str, str] | None = None,
                     after: Callable[[], None] | None = None) -> AsyncIterator[AccessUnit]:
    """``units`` through ``transcoder`` on a worker thread of its own.

    Units that gave no picture are counted as ``vsgw_<purpose>_undecodable_total`` (with
    ``labels``); ``after`` runs on the event loop after every batch (for the caller's own counters)."""
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=transcoder.purpose)
    counted = 0

    def count() -> None:
        nonlocal counted
        if metrics is not None and transcoder.undecodable > counted:
            metrics.inc(f"vsgw_{transcoder.purpose}_undecodable_total", transcoder.undecodable - counted,
                        **(labels or {}))
            counted = transcoder.undecodable
        if after is not None:
            after()

    try:
        async for unit in units:
            for out in await loop.run_in_executor(pool, transcoder.push, unit):
                yield out
            count()
        for out in await loop.run_in_executor(pool, transcoder.flush):
            yield out
        count()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
