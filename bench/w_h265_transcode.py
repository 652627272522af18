"""Cost of one camera's H.265 → H.264 transcode for browsers without H.265, at 720p25: HEVC decode +
libx264 re-encode (ultrafast, zerolatency, constrained baseline, one codec thread, IDR where the
source has one), driven through ``transcoded()`` with the fan-out's ``Transcoder`` as fast as the
worker goes. The figure is CPU seconds (all threads of the process) per second of video: the
share of one core that one transcoded camera costs (shared by all its H.264 viewers). The source
is ffmpeg's ``testsrc2`` encoded by libx265 before timing starts; ``--noise`` adds temporal noise
(ffmpeg ``noise`` filter), which makes both the source and the re-encode heavier.

    .venv/bin/python bench/w_h265_transcode.py [--seconds 8] [--noise 0 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.media import H264, H265, AccessUnit  # noqa: E402
from gateway.media.transcode import Transcoder, transcoded  # noqa: E402

WIDTH, HEIGHT, FPS, GOP = 1280, 720, 25, 50


def source_units(seconds: float, noise: int) -> list[AccessUnit]:
    """720p25 H.265 at 2 Mbit/s (libx265), GOP 50, no B-frames, parameter sets on every IDR."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "src.ts"
        vf = f"noise=alls={noise}:allf=t" if noise else "null"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", "-t", str(seconds), "-vf", vf,
                        "-c:v", "libx265", "-preset", "ultrafast", "-b:v", "2M",
                        "-x265-params", f"log-level=error:keyint={GOP}:min-keyint={GOP}:bframes=0:repeat-headers=1",
                        "-f", "mpegts", str(path)], check=True)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return [AccessUnit(H265, p.pts, p.dts, p.is_keyframe, bytes(p)) for p in container.demux(stream) if p.size]


async def replay(units: list[AccessUnit]) -> AsyncIterator[AccessUnit]:
    for unit in units:
        yield unit


async def measure(units: list[AccessUnit]) -> tuple[float, float, list[AccessUnit]]:
    """(CPU seconds, wall seconds, output units) for one camera's transcode."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = [u async for u in transcoded(replay(units), Transcoder(threads=1))]
    return time.process_time() - cpu, time.perf_counter() - wall, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--noise", type=int, nargs="+", default=[0, 6])
    args = ap.parse_args()
    print(f"H.265 -> H.264, {WIDTH}x{HEIGHT}p{FPS}, GOP {GOP}, {args.seconds:g} s of video per run, "
          f"{os.cpu_count()} cores")
    for noise in args.noise:
        units = source_units(args.seconds, noise)
        duration = len(units) / FPS
        cpu, wall, out = asyncio.run(measure(units))
        assert len(out) == len(units) and all(u.codec == H264 for u in out), (len(out), len(units))
        assert [u.pts for u in out if u.keyframe] == [u.pts for u in units if u.keyframe]  # the source's GOP
        src_rate = sum(u.size for u in units) * 8 / duration / 1e6
        out_rate = sum(u.size for u in out) * 8 / duration / 1e6
        print(f"noise {noise:2d}: {cpu / duration:.3f} CPU-s per s of video ({100 * cpu / duration:.1f}% of a core; "
              f"≈{duration / cpu:.1f} transcoded cameras per core), {1000 * cpu / len(out):.1f} ms CPU/frame, "
              f"{duration / wall:.1f}x real time; H.265 {src_rate:.2f} Mbit/s -> H.264 {out_rate:.2f} Mbit/s")


if __name__ == "__main__":
    main()
