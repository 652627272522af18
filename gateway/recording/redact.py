"""Public-release redaction (R14, WX 26 ¶2): faces and licence plates are blurred before the file is
written. CPU only, with the Haar cascades that ship inside opencv-python-headless 4.x (nothing is
downloaded at run time). Detection runs on every k-th frame; boxes are carried between detections,
enlarged for motion, and a box that a later detection misses is kept one round more: when unsure,
mask more. The output still needs a human reviewer before release.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CASCADES = {
    "face": ("haarcascade_frontalface_default.xml", 1.1, 3),
    "profile": ("haarcascade_profileface.xml", 1.1, 3),
    "plate": ("haarcascade_russian_plate_number.xml", 1.1, 3),
}


@dataclass(slots=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    kind: str
    missed: int = 0  # detection rounds since this box was last confirmed


class Redactor:
    """Not thread-safe: one per export job."""

    def __init__(self, every: int = 5, detect_width: int = 640, margin: float = 0.2, motion: float = 0.3) -> None:
        self.every = max(1, every)
        self.detect_width = detect_width
        self.margin = margin  # enlargement of every detected box
        self.motion = motion  # further enlargement per detection interval a box is carried
        base = cv2.data.haarcascades
        self._cascades = {kind: (cv2.CascadeClassifier(base + name), scale, neighbours)
                          for kind, (name, scale, neighbours) in CASCADES.items()}
        for kind, (cascade, _, _) in self._cascades.items():
            if cascade.empty():
                raise RuntimeError(f"OpenCV's {kind} cascade is missing; install opencv-python-headless<5")
        self.boxes: list[Box] = []
        self.frame = 0
        self.detections = 0

    def detect(self, rgb: np.ndarray) -> list[Box]:
        height, width = rgb.shape[:2]
        scale = min(1.0, self.detect_width / width)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        found: list[Box] = []
        min_size = (max(12, gray.shape[1] // 60),) * 2
        for kind, (cascade, factor, neighbours) in self._cascades.items():
            images = [(gray, False), (cv2.flip(gray, 1), True)] if kind == "profile" else [(gray, False)]
            for img, flipped in images:
                for x, y, w, h in cascade.detectMultiScale(img, factor, neighbours, minSize=min_size):
                    if flipped:
                        x = img.shape[1] - x - w
                    found.append(Box(round(x / scale), round(y / scale), round(w / scale), round(h / scale), kind))
        self.detections += 1
        return found

    def process(self, rgb: np.ndarray) -> np.ndarray:
        """Blur this frame's sensitive regions in place and return it."""
        if self.frame % self.every == 0:
            fresh = self.detect(rgb)
            kept = [b for b in self.boxes if b.missed == 0 and not any(_overlaps(b, f) for f in fresh)]
            for b in kept:
                b.missed = 1  # unconfirmed: masked for one more round, a little larger
            self.boxes = fresh + kept
        since = (self.frame % self.every) / self.every
        for box in self.boxes:
            blur(rgb, box, self.margin + self.motion * (since + box.missed))
        self.frame += 1
        return rgb


def _overlaps(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def blur(rgb: np.ndarray, box: Box, grow: float) -> None:
    """Pixelate then smooth the enlarged box: coarse enough that a face or plate cannot be read back."""
    height, width = rgb.shape[:2]
    dx, dy = round(box.w * grow / 2), round(box.h * grow / 2)
    x0, y0 = max(0, box.x - dx), max(0, box.y - dy)
    x1, y1 = min(width, box.x + box.w + dx), min(height, box.y + box.h + dy)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = rgb[y0:y1, x0:x1]
    small = cv2.resize(roi, (max(1, (x1 - x0) // 12), max(1, (y1 - y0) // 12)), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    k = max(3, ((min(x1 - x0, y1 - y0) // 6) | 1))
    roi[:] = cv2.GaussianBlur(coarse, (k, k), 0)
