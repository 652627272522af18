"""Per-relative cost of the R13 watermark at 720p25: decode + burn the grant's text into the pixels
+ libx264 re-encode (ultrafast, zerolatency, constrained baseline, one codec thread), driven through
``watermarked()`` exactly as a session runs it, as fast as the worker goes. The figure is CPU seconds
(all threads of the process) per second of video, i.e. the share of one core a watching relative
costs. The source is the synthetic camera, pre-encoded before timing starts; ``--noise`` adds
per-frame sensor-like noise, which makes both the source and the re-encode heavier.

    .venv/bin/python bench/w13_watermark.py [--seconds 10] [--noise 0 6]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
import os
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.synthetic import PatternEncoder, PatternSpec  # noqa: E402
from gateway.media import AccessUnit  # noqa: E402
from gateway.media.watermark import Pattern, watermarked  # noqa: E402

WIDTH, HEIGHT, FPS, GOP = 1280, 720, 25, 50
TEXT = "grant g-123 2026-12-03 15:04 CST"


def source_units(seconds: float, noise: int) -> list[AccessUnit]:
    enc = PatternEncoder(PatternSpec("bench", WIDTH, HEIGHT, FPS, GOP, noise=noise))
    return [u for i in range(int(seconds * FPS)) for u in enc.encode(1_800_000_000.0 + i / FPS)]


async def replay(units: list[AccessUnit]) -> AsyncIterator[AccessUnit]:
    for unit in units:
        yield unit


async def measure(units: list[AccessUnit]) -> tuple[float, float, int, int]:
    """(CPU seconds, wall seconds, output units, output bytes) for one watermarked session."""
    cpu, wall = time.process_time(), time.perf_counter()
    count = size = 0
    async for out in watermarked(replay(units), TEXT):
        count += 1
        size += out.size
    return time.process_time() - cpu, time.perf_counter() - wall, count, size


def paint_ms() -> float:
    """The blend alone, per 720p picture (the rest is decode + encode)."""
    pattern = Pattern(TEXT, WIDTH, HEIGHT, 0.45)
    luma = np.random.default_rng(1).integers(16, 235, (HEIGHT, WIDTH), dtype=np.uint8)
    rounds = 100
    began = time.process_time()
    for i in range(rounds):
        pattern.paint(luma, i * 3600)
    return (time.process_time() - began) / rounds * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--noise", type=int, nargs="+", default=[0, 6])
    args = ap.parse_args()
    print(f"720p{FPS}, GOP {GOP}, {args.seconds:g} s of video per run, {os.cpu_count()} cores")
    for noise in args.noise:
        units = source_units(args.seconds, noise)
        duration = len(units) / FPS
        src_rate = sum(u.size for u in units) * 8 / duration / 1e6
        cpu, wall, count, size = asyncio.run(measure(units))
        assert count == len(units), (count, len(units))
        print(f"noise {noise:2d}: {cpu / duration:.3f} CPU-s per s of video ({100 * cpu / duration:.1f}% of a core; "
              f"≈{duration / cpu:.1f} relatives per core), {1000 * cpu / count:.1f} ms CPU/frame, "
              f"{duration / wall:.1f}x real time; source {src_rate:.2f} Mbit/s -> watermarked "
              f"{size * 8 / duration / 1e6:.2f} Mbit/s")
    print(f"of which the watermark blend: {paint_ms():.2f} ms per picture")


if __name__ == "__main__":
    main()
