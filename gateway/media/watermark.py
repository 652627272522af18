"""A grant's watermark burnt into the pixels of a relative's video (R13, WX 25).

Relatives may view but never copy, so what they see carries the grant's text in the picture
itself, where their client cannot strip it: each access unit is decoded, the text is blended into
the luma plane as a semi-transparent tiled pattern that drifts slowly (cropping any part of the
picture keeps copies of it; a fixed mask cannot be painted out), and the picture is re-encoded as
constrained-baseline H.264 for WebRTC with the source's timestamps, frame rate and keyframes by
the shared pipeline in :mod:`gateway.media.transcode` (one worker thread per session).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from fractions import Fraction
import logging

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gateway.metrics import Metrics

from .overlay_font import CJK_PACKAGES, face_for
from .transcode import Transcoder, transcoded
from .unit import CLOCK_RATE, AccessUnit

log = logging.getLogger(__name__)

Text = str | Callable[[], str]  # a callable is re-read every picture (e.g. to show the current minute)

_DARK, _LIGHT = 16, 235  # video-range black and white


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


class Watermark:
    """The painter of one session: blends the (possibly changing) text into each picture's luma.

    Runs on the transcoder's worker thread; re-renders the pattern only when the text or the
    picture size changes."""

    def __init__(self, text: Text, opacity: float = 0.45) -> None:
        self._text = text
        self._opacity = opacity
        self.pattern: Pattern | None = None
        self.missing_glyphs = False  # the font could not draw some of the text (logged once)

    def __call__(self, frame: av.VideoFrame, pts: int) -> av.VideoFrame:
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
        return av.VideoFrame.from_ndarray(planes, format="yuv420p")


def watermarked(units: AsyncIterator[AccessUnit], text: Text, *, opacity: float = 0.45,
                fps: Fraction | int | None = None, threads: int = 1,
                metrics: Metrics | None = None) -> AsyncIterator[AccessUnit]:
    """``units`` re-encoded with ``text`` burnt in, on a worker thread of its own.

    Timestamps, capture times and keyframes are the source's; ``fps`` overrides the frame rate
    when the source's SPS does not state one (else 25). ``threads`` bounds the codec threads, so a
    session costs at most that many cores. H.264 and H.265 in, H.264 out.
    """
    painter = Watermark(text, opacity)
    counted = False

    def count_glyphs() -> None:
        nonlocal counted
        if metrics is not None and painter.missing_glyphs and not counted:
            metrics.inc("vsgw_watermark_missing_glyphs_total")
            counted = True

    transcoder = Transcoder(painter, fps=fps, threads=threads, purpose="watermark")
    return transcoded(units, transcoder, metrics=metrics, after=count_glyphs)
