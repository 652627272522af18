"""A moving test pattern with the camera's name and the wall clock (ms) burned in, encoded to
real H.264 (libx264 through PyAV). Encoding runs in a worker thread, never on the event loop."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
import time

import av
import cv2
import numpy as np

from gateway.media import CLOCK_RATE, H264, AccessUnit
from gateway.media.nal import ParamTracker, split_annexb


@dataclass(frozen=True, slots=True)
class PatternSpec:
    name: str
    width: int = 1280
    height: int = 720
    fps: int = 25
    gop: int = 50
    bitrate: int = 2_000_000
    noise: int = 0  # amplitude of per-frame noise; raises the real bitrate towards the target


class PatternEncoder:
    """Not thread-safe; one instance per camera, used from one worker thread at a time."""

    def __init__(self, spec: PatternSpec) -> None:
        self.spec = spec
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height = spec.width, spec.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, CLOCK_RATE)
        ctx.framerate = spec.fps
        ctx.bit_rate = spec.bitrate
        ctx.gop_size = spec.gop
        ctx.max_b_frames = 0
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "x264-params": f"keyint={spec.gop}:min-keyint={spec.gop}:scenecut=0:repeat-headers=1"
            f":vbv-maxrate={spec.bitrate // 1000}:vbv-bufsize={spec.bitrate // 1000}",
        }
        self._ctx = ctx
        self._params = ParamTracker(H264)
        self._index = 0
        self._force = False
        self._rng = np.random.default_rng(abs(hash(spec.name)) % 2**32)
        self._bars = _colour_bars(spec.width, spec.height)

    def _picture(self, now: float) -> np.ndarray:
        s = self.spec
        shift = (self._index * 4) % s.width
        img = np.roll(self._bars, shift, axis=1)
        box = s.height // 6
        x = int((s.width - box) * (0.5 + 0.5 * np.sin(self._index / s.fps)))
        y = int((s.height - box) * (0.5 + 0.5 * np.cos(self._index / (1.3 * s.fps))))
        cv2.rectangle(img, (x, y), (x + box, y + box), (255, 255, 255), -1)
        scale = max(s.height / 360, 0.4)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        for text, row in ((s.name, 0.12), (stamp, 0.24), (f"#{self._index}", 0.36)):
            org = (int(s.width * 0.04), int(s.height * row))
            cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), int(4 * scale) + 2, cv2.LINE_AA)
            cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), int(2 * scale) + 1, cv2.LINE_AA)
        if s.noise:
            img = cv2.add(img, self._rng.integers(0, s.noise, img.shape, dtype=np.uint8))
        return img

    def force_keyframe(self) -> None:
        self._force = True

    def encode(self, now: float | None = None) -> list[AccessUnit]:
        """Encode the next picture; returns the access units the encoder emitted (usually one)."""
        now = time.time() if now is None else now
        frame = av.VideoFrame.from_ndarray(self._picture(now), format="rgb24").reformat(format="yuv420p")
        frame.pts = self._index * CLOCK_RATE // self.spec.fps
        frame.time_base = self._ctx.time_base
        if self._force:
            frame.pict_type = av.video.frame.PictureType.I
            self._force = False
        self._index += 1
        return [self._unit(p, now) for p in self._ctx.encode(frame)]

    def _unit(self, packet: av.Packet, now: float) -> AccessUnit:
        data = bytes(packet)
        key, _ = self._params.observe(split_annexb(data))
        return AccessUnit(
            codec=H264, pts=packet.pts, dts=packet.dts if packet.dts is not None else packet.pts,
            keyframe=key, data=data, params=self._params.params, wallclock=now,
        )


def _colour_bars(width: int, height: int) -> np.ndarray:
    colours = np.array(
        [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0), (0, 0, 192), (16, 16, 16)],
        dtype=np.uint8,
    )
    idx = (np.arange(width) * len(colours) // width)
    row = colours[idx]
    img = np.repeat(row[None, :, :], height, axis=0)
    img[height * 3 // 4 :, :, :] = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    return np.ascontiguousarray(img)
