"""Recording cost: N synthetic 720p cameras at ~2 Mbit/s (pre-rendered loops, noise=24) recorded to
MPEG-TS segments. Prints CPU per camera against the goal (0.5 % of a core) and against a null hub
reader (the ingest alone), plus the disk write pattern (writes/s, bytes per write, fsyncs).

    .venv/bin/python bench/recording_cpu.py [--cameras 8] [--seconds 20] [--segment 10]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import resource
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gateway.recording  # noqa: E402,F401 - registers [recording]
from gateway.app import Gateway  # noqa: E402
from gateway.config import Config  # noqa: E402
from gateway.recording.web import PART  # noqa: E402
from gateway.policy import InternalAccess  # noqa: E402

TEST_READER = InternalAccess("test")

GOAL = 0.005  # of one core, per camera


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def config(data: str, n: int, record: bool, segment: float) -> Config:
    cams = [{"id": f"c{i}", "kind": "synthetic", "width": 1280, "height": 720, "fps": 25, "gop": 50,
             "bitrate": 2_000_000, "noise": 24, "loop_seconds": 4.0} for i in range(n)]
    raw = {"node": {"data_dir": data}, "http": {"port": 0, "tokens": ["bench"]}, "cameras": cams,
           "recording": {"cameras": ["all"] if record else [], "segment_seconds": segment, "min_free_bytes": 0}}
    return Config(raw, env={})


async def run(n: int, seconds: float, segment: float, record: bool, loops: dict) -> dict:
    with tempfile.TemporaryDirectory(dir=str(Path.cwd())) as data:
        gw = Gateway(config(data, n, record, segment))
        for adapter in gw.adapters:  # share pre-rendered loops between runs (encoding is not what we measure)
            adapter._loops = loops
        await gw.start()
        readers = [] if record else [gw.hub.subscribe(TEST_READER, f"c{i}", name="null") for i in range(n)]
        drains = [asyncio.create_task(_drain(r)) for r in readers]
        for i in range(n):
            await asyncio.wait_for(gw.hub.stream(f"c{i}").first_unit.wait(), 300)
        await asyncio.sleep(2)
        part = gw.app[PART]
        before = part.recorder.io_stats()
        bytes0 = sum(gw.hub.stream(f"c{i}").bytes for i in range(n))
        c0, t0 = cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        c1, t1 = cpu(), time.monotonic()
        bytes1 = sum(gw.hub.stream(f"c{i}").bytes for i in range(n))
        after = part.recorder.io_stats()
        await gw.stop()
        for task in drains:
            task.cancel()
        wall = t1 - t0
        return {"cpu": (c1 - c0) / wall, "bitrate": (bytes1 - bytes0) * 8 / wall / n,
                "writes": after["writes"] - before["writes"], "bytes": after["bytes"] - before["bytes"],
                "fsyncs": after["fsyncs"] - before["fsyncs"], "segments": after["segments"] - before["segments"],
                "span": wall}


async def _drain(reader) -> None:  # noqa: ANN001
    async for _ in reader:
        pass


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--segment", type=float, default=10)
    args = ap.parse_args()
    loops: dict = {}
    n = args.cameras
    print(f"pre-rendering {n} cameras (1280x720, 25 fps, GOP 50, 2 Mbit/s target, noise 24)…", flush=True)
    base = await run(n, args.seconds, args.segment, False, loops)
    rec = await run(n, args.seconds, args.segment, True, loops)
    per_cam = (rec["cpu"] - base["cpu"]) / n
    print(f"\ncameras {n}, measured {args.seconds:.0f} s each, segments of {args.segment:g} s, fsync at close")
    print(f"stream bitrate per camera          {rec['bitrate'] / 1e6:8.2f} Mbit/s")
    print(f"process CPU, ingest + null readers {base['cpu'] * 100:8.2f} % of a core")
    print(f"process CPU, ingest + recorder     {rec['cpu'] * 100:8.2f} % of a core")
    print(f"recording CPU per camera           {per_cam * 100:8.3f} % of a core   (goal {GOAL * 100:.1f} %: "
          f"{per_cam / GOAL:.2f}x the goal)")
    print(f"recording vs null reader           {rec['cpu'] / max(base['cpu'], 1e-9):8.2f}x")
    span = rec["span"]
    print(f"disk: {rec['writes']} writes, {rec['bytes'] / max(rec['writes'], 1) / 1024:.1f} KiB per write, "
          f"{rec['writes'] / span / n:.1f} writes/s per camera, {rec['fsyncs']} fsyncs for {rec['segments']} segments "
          f"closed (file + directory at each close)")


if __name__ == "__main__":
    asyncio.run(main())
