"""A grant's watermark burnt into the pixels of a relative's video (R13, WX 25).

Relatives may view but never copy, so what they see carries the grant's text in the picture
itself, where their client cannot strip it: each access unit is decoded, the text is blended into
the luma plane as a semi-transparent tiled pattern that drifts slowly (cropping any part of the
picture keeps copies of it; a fixed mask cannot be painted out), and the picture is re-encoded as
constrained-baseline H.264 for WebRTC with the source's timestamps, frame rate and keyframes.

Decoding and encoding run in one worker thread per session, never on the event loop. The input is
pulled only as fast as that worker keeps up: for live video pass a :class:`~gateway.media.stream.Reader`,
whose bounded queue is the session's only buffer and which skips to the next keyframe when the
worker falls behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
import logging

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gateway.metrics import Metrics

from .nal import ParamTracker, split_annexb
from .overlay_font import CJK_PACKAGES, face_for
from .unit import CLOCK_RATE, H264, H265, AccessUnit

log = logging.getLogger(__name__)

Text = str | Callable[[], str]  # a callable is re-read every picture (e.g. to show the current minute)

_DECODERS = {H264: "h264", H265: "hevc"}
_DARK, _LIGHT = 16, 235  # video-range black and white
_BITS_PER_PIXEL = 0.3  # VBV cap (6.9 Mbit/s at 720p25): peaks only, CRF sets the usual rate


class Pattern:
    """The text rendered once as a tiled alpha pattern; :meth:`paint` blends a moving window of it.

    The blend is ``Y' = (Y * (256 - a) + add) >> 8`` with ``a`` and ``add`` precomputed, so each
    picture costs a few vectorised passes over the luma plane and no font rendering. Only luma is
    touched: light text with a dark outline reads on any colour, and chroma would add half again.
    """

    def __init__(self, text: str, width: int, height: int, opacity: float) -> None:
        self.text = text
        self.width, self.height = width, height
        face = face_for(text)
        self.missing = face.missing
        size = max(12, round(height / 24))
        font = ImageFont.truetype(face.path, size) if face.path else ImageFont.load_default(size)
        stroke = max(1, size // 12)
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        text_w, text_h = max(1, right - left), max(1, bottom - top)
        cell_w, cell_h = text_w + 3 * size, text_h + 3 * size
        outline = Image.new("L", (cell_w, 2 * cell_h))
        fill = Image.new("L", outline.size)
        for row in range(2):  # two rows, the second shifted half a cell: a brick pattern
            for dx in (0, -cell_w) if row else (0,):
                xy = (dx + (cell_w // 2 if row else 0) - left, row * cell_h - top)
                ImageDraw.Draw(outline).text(xy, text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
                ImageDraw.Draw(fill).text(xy, text, font=font, fill=255)
        a = np.asarray(outline, dtype=np.float32) / 255.0
        f = np.minimum(np.asarray(fill, dtype=np.float32) / 255.0, a)
        reps = (height // (2 * cell_h) + 2, width // cell_w + 2)
        self._period = (2 * cell_h, cell_w)
        self._alpha = np.tile(np.rint(256 * opacity * a).astype(np.uint16), reps)
        self._add = np.tile(np.rint(256 * opacity * (_DARK * (a - f) + _LIGHT * f)).astype(np.uint16), reps)

    def offset(self, pts: int) -> tuple[int, int]:
        """Where the window sits at ``pts``: one cell across every 20 s, one brick down every 30 s."""
        period_y, period_x = self._period
        return (pts * period_y // (30 * CLOCK_RATE)) % period_y, (pts * period_x // (20 * CLOCK_RATE)) % period_x

    def alpha(self, pts: int) -> np.ndarray:
        """The blend weight (0–256) of every luma sample at ``pts``."""
        y, x = self.offset(pts)
        return self._alpha[y : y + self.height, x : x + self.width]

    def paint(self, luma: np.ndarray, pts: int) -> None:
        y, x = self.offset(pts)
        view = (slice(y, y + self.height), slice(x, x + self.width))
        mixed = luma.astype(np.uint16)
        mixed *= 256 - self._alpha[view]
        mixed += self._add[view]
        mixed >>= 8
        luma[...] = mixed


class Transcoder:
    """Decode, paint, re-encode. Not thread-safe: one per session, used from its worker thread."""

    def __init__(self, text: Text, *, opacity: float = 0.45, fps: Fraction | int | None = None,
                 threads: int = 1) -> None:
        self._text = text
        self._opacity = opacity
        self._fps = Fraction(fps) if fps else None
        self._threads = threads
        self._decoder: av.CodecContext | None = None
        self._encoder: av.CodecContext | None = None
        self._codec: str | None = None
        self.pattern: Pattern | None = None
        self._params = ParamTracker(H264)
        self._pending: dict[int, tuple[int, bool, float]] = {}  # pts -> (dts, keyframe, wallclock)
        self._dts: deque[int] = deque()  # decode-order dts still owed to an output picture
        self._sent: dict[int, float] = {}  # pts -> wallclock of pictures inside the encoder
        self.undecodable = 0  # access units that produced no picture
        self.frames = 0
        self.missing_glyphs = False  # the font could not draw some of the text (logged once)

    def push(self, unit: AccessUnit) -> list[AccessUnit]:
        """One source access unit in; the watermarked access units ready so far out (usually one)."""
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
            raise ValueError(f"cannot watermark {codec!r} video; supported: {', '.join(_DECODERS)}")
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
        text = self._text() if callable(self._text) else self._text
        pattern = self.pattern
        if pattern is None or pattern.text != text or (pattern.width, pattern.height) != (frame.width, frame.height):
            pattern = self.pattern = Pattern(text, frame.width, frame.height, self._opacity)
            if pattern.missing and not self.missing_glyphs:
                self.missing_glyphs = True
                log.warning("watermark font lacks %d of the text's characters; install %s",
                            len(pattern.missing), " or ".join(CJK_PACKAGES))
        planes = frame.to_ndarray()
        pattern.paint(planes[: frame.height], pts)
        painted = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        painted.pts, painted.time_base = pts, Fraction(1, CLOCK_RATE)
        if keyframe:
            painted.pict_type = av.video.frame.PictureType.I
        self._sent[pts] = wallclock
        self.frames += 1
        return [self._unit(p) for p in self._encoder.encode(painted)]

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


async def watermarked(units: AsyncIterator[AccessUnit], text: Text, *, opacity: float = 0.45,
                      fps: Fraction | int | None = None, threads: int = 1,
                      metrics: Metrics | None = None) -> AsyncIterator[AccessUnit]:
    """``units`` re-encoded with ``text`` burnt in, on a worker thread of its own.

    Timestamps, capture times and keyframes are the source's; ``fps`` overrides the frame rate
    when the source's SPS does not state one (else 25). ``threads`` bounds the codec threads, so a
    session costs at most that many cores. H.264 and H.265 in, H.264 out.
    """
    transcoder = Transcoder(text, opacity=opacity, fps=fps, threads=threads)
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watermark")
    counted = [0, False]

    def count() -> None:
        if metrics is None:
            return
        if transcoder.undecodable > counted[0]:
            metrics.inc("vsgw_watermark_undecodable_total", transcoder.undecodable - counted[0])
            counted[0] = transcoder.undecodable
        if transcoder.missing_glyphs and not counted[1]:
            metrics.inc("vsgw_watermark_missing_glyphs_total")
            counted[1] = True

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
