"""W6: 50 WebRTC viewers of one 720p25 2 Mbit/s camera, 5 of which stall (their process is
SIGSTOPped, so they stop reading their sockets); the healthy viewers' frame-interval p99 before
and after the stall and its change (goal: < 5 ms). The gateway (``bench/w1_server.py``) runs
pinned to CPU 0; the viewers are the shared W1 harness's non-decoding aiortc viewers, on CPU 1.

    .venv/bin/python bench/w6_stalled.py [--healthy 45] [--stalled 5] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import aiohttp

W1 = Path(os.environ.get("W1_HARNESS", "/work/shared/anchors/w1"))
spec = importlib.util.spec_from_file_location("w1_viewers", W1 / "viewers.py")
harness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(harness)  # loopback ICE, receivers that count packets and never decode


class TimedViewer(harness.WhepViewer):
    """Records when each frame's last packet (RTP marker) arrives."""

    def __init__(self, *args) -> None:  # noqa: ANN002
        super().__init__(*args)
        self.marks: list[float] = []

    def on_rtp(self, packet) -> None:  # noqa: ANN001
        super().on_rtp(packet)
        if packet.marker:
            self.marks.append(time.monotonic())


def p99_interval(viewers: list[TimedViewer], start: float, end: float) -> tuple[float, float]:
    gaps, fps = [], []
    for v in viewers:
        marks = [t for t in v.marks if start <= t <= end]
        gaps += [b - a for a, b in zip(marks, marks[1:])]
        fps.append(len(marks) / (end - start))
    gaps.sort()
    return gaps[int(0.99 * (len(gaps) - 1))] * 1000, min(fps)


async def connect(n: int, url: str) -> tuple[aiohttp.ClientSession, list[TimedViewer]]:
    http = aiohttp.ClientSession()
    viewers = [TimedViewer(i, http, url, "w1") for i in range(n)]
    for chunk in range(0, n, 8):
        await asyncio.gather(*(v.connect() for v in viewers[chunk:chunk + 8]))
    await asyncio.wait_for(asyncio.gather(*(v.first_rtp.wait() for v in viewers)), 60)
    return http, viewers


async def stalled_mode(n: int, url: str) -> None:
    await connect(n, url)
    print("CONNECTED", flush=True)
    await asyncio.Event().wait()


async def main(a: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {1})  # the healthy viewers beside the stalled ones; the gateway has CPU 0
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(Path(__file__).with_name("w1_server.py")),
                               "--port", str(a.port)], stdout=subprocess.PIPE, text=True)
    stalled = None
    try:
        line = await asyncio.to_thread(server.stdout.readline)
        url = line.split()[2]
        stalled = subprocess.Popen(["taskset", "-c", "1", sys.executable, __file__, "--stalled-mode", str(a.stalled),
                                    "--url", url], stdout=subprocess.PIPE, text=True)
        assert (await asyncio.to_thread(stalled.stdout.readline)).startswith("CONNECTED")
        http, viewers = await connect(a.healthy, url)
        await asyncio.sleep(3)  # warm-up
        t0 = time.monotonic()
        await asyncio.sleep(a.window)
        t1 = time.monotonic()
        os.kill(stalled.pid, signal.SIGSTOP)
        await asyncio.sleep(2)
        t2 = time.monotonic()
        await asyncio.sleep(a.window)
        t3 = time.monotonic()
        before, fps_before = p99_interval(viewers, t0, t1)
        after, fps_after = p99_interval(viewers, t2, t3)
        print(f"# {a.healthy} healthy + {a.stalled} stalled viewers, window {a.window:g} s")
        print(f"healthy frame-interval p99: all reading {before:.1f} ms, {a.stalled} stalled {after:.1f} ms, "
              f"change {after - before:+.1f} ms (goal < 5 ms); min fps {fps_before:.2f} -> {fps_after:.2f}")
        await http.close()
    finally:
        for proc in (stalled, server):
            if proc is not None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--healthy", type=int, default=45)
    ap.add_argument("--stalled", type=int, default=5)
    ap.add_argument("--window", type=float, default=10)
    ap.add_argument("--port", type=int, default=8096)
    ap.add_argument("--stalled-mode", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stalled_mode:
        asyncio.run(stalled_mode(args.stalled_mode, args.url))
    else:
        asyncio.run(main(args))
