"""Public-release redaction throughput at 720p on this machine's cores: the whole export path
(demux → decode → detect every k-th frame + blur → H.264 encode → MP4), against the same path with
no redaction (transcode only) and against detection on every frame. Anchor: the research note's
Haar timings (1080p, 2-core EPYC: 380–745 ms per frame).

    .venv/bin/python bench/redaction_fps.py [--frames 150] [--every 5]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
import os
from pathlib import Path
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.recording.export import build  # noqa: E402
from gateway.recording.index import SegmentRow  # noqa: E402
from gateway.recording.redact import Redactor  # noqa: E402
from gateway.recording.segments import SegmentWriter  # noqa: E402
from tests.test_recording_support import encode  # noqa: E402


def scene(n: int) -> list[np.ndarray]:
    """720p frames: a street-like noisy background with the packaged face photo moving across."""
    from skimage.data import astronaut

    face = np.ascontiguousarray(astronaut())  # 512x512, one face of about 95 px
    rng = np.random.default_rng(1)
    base = rng.integers(40, 200, (720, 1280, 3), dtype=np.uint8)
    base = cv2.GaussianBlur(base, (9, 9), 0)
    frames = []
    for i in range(n):
        img = base.copy()
        x = 100 + (i * 6) % 600
        img[100:612, x:x + 512] = face
        frames.append(img)
    return frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--every", type=int, default=5)
    args = ap.parse_args()
    cv2.setNumThreads(os.cpu_count() or 2)
    units = encode(scene(args.frames), gop=50)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        writer = SegmentWriter(root / "seg.ts", "h264", fsync=False)
        writer.add(units)
        digest, size = writer.close()
        row = SegmentRow(camera="b", start=start, end=start + timedelta(seconds=writer.duration), path="seg.ts",
                         size=size, codec="h264", hash=digest, status="closed")
        t0, t1 = start.timestamp(), start.timestamp() + writer.duration + 1

        def timed(redactor: Redactor | None) -> float:
            began = time.perf_counter()
            frames = build(root, [row], t0, t1, root / "out.mp4", lambda _: None, redactor)
            return frames / (time.perf_counter() - began)

        transcode = timed(_Identity())
        fps_k = timed(Redactor(every=args.every))
        fps_1 = timed(Redactor(every=1))
    n = args.frames
    print(f"720p, {n} frames, {os.cpu_count()} cores, OpenCV {cv2.__version__} Haar (face, profile, plate)")
    print(f"transcode only (decode + encode)        {transcode:7.1f} fps")
    print(f"redaction, detect every {args.every:<2} frame(s)    {fps_k:7.1f} fps   ({fps_k / transcode:.2f}x transcode)")
    print(f"redaction, detect every frame           {fps_1:7.1f} fps   ({fps_1 / transcode:.2f}x transcode; "
          f"{1000 / fps_1:.0f} ms/frame vs the note's 1080p Haar anchor 380–745 ms)")
    print(f"a 1-minute 25 fps clip takes ≈{60 * 25 / fps_k:.0f} s with k={args.every}")


class _Identity(Redactor):
    """The transcode path with nothing detected or blurred."""

    def process(self, rgb: np.ndarray) -> np.ndarray:
        return rgb


if __name__ == "__main__":
    main()
