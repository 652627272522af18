"""Hub fan-out cost (issue 2 benchmark): CPU per stream-second for the hub alone and per reader.

S synthetic 2 Mbit/s 720p25 H.264 streams (pre-encoded once with the synthetic camera's
``PatternEncoder``, noise 24, then replayed in real time with fresh timestamps) are written into
the hub's ``Stream``; N in-process readers per stream each drain their ``Reader``. N = 0 is the
baseline (replay plus ``Stream.write`` with nobody reading). The same load runs through aiortc's
``MediaRelay`` (buffered: one asyncio.Queue per subscriber) as the anchor, side by side.

Goal: hub overhead per reader <= 1 % of a core (0.010 CPU-s per stream-second) at 2 Mbit/s.

    .venv/bin/python bench/hub_fanout.py [--seconds 5] [--streams 1,10] [--readers 0,1,10,50,100,200]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.synthetic.encoder import PatternEncoder, PatternSpec  # noqa: E402
from gateway.media import CLOCK_RATE, AccessUnit, Stream  # noqa: E402

FPS = 25
GOAL = 0.010  # CPU-s per stream-second per reader: 1 % of a core


@dataclass
class Run:
    streams: int
    readers: int  # per stream
    cpu: float
    wall: float
    emitted: int  # units written per stream
    scheduled: int  # units the wall clock asked for per stream
    min_delivered: int  # fewest units any reader got
    skips: int
    p99_latency: float  # seconds from write to a reader's get, sampled on reader 0 of each stream

    @property
    def per_stream_second(self) -> float:
        return self.cpu / (self.wall * self.streams)

    @property
    def real_time(self) -> bool:
        ok_writer = self.emitted >= 0.98 * self.scheduled
        ok_readers = self.readers == 0 or (self.min_delivered >= 0.98 * self.emitted and self.skips == 0)
        return ok_writer and ok_readers and self.p99_latency < 0.1


def prerender(seconds: float) -> tuple[list[AccessUnit], float]:
    spec = PatternSpec("bench", 1280, 720, FPS, 50, 2_000_000, noise=24)
    encoder = PatternEncoder(spec)
    units: list[AccessUnit] = []
    while len(units) < seconds * FPS:
        units += encoder.encode()
    units = units[: int(seconds * FPS) // spec.gop * spec.gop]
    return units, sum(u.size for u in units) * 8 / (len(units) / FPS)


async def replay(units: list[AccessUnit], write, stop: asyncio.Event, counter: list[int]) -> None:  # noqa: ANN001
    """Writes units at 25 fps on the wall clock with rising timestamps, as a camera would."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    frame = 0
    while not stop.is_set():
        unit = units[frame % len(units)]
        ts = frame * (CLOCK_RATE // FPS)
        write(replace(unit, pts=ts, dts=ts, wallclock=time.time()))
        frame += 1
        counter[0] = frame
        await asyncio.sleep(max(0.0, start + frame / FPS - loop.time()))


async def idle_source() -> AsyncIterator[AccessUnit]:
    """The ingest task a subscribe starts waits here; units come from :func:`replay`."""
    await asyncio.Event().wait()
    yield  # type: ignore[misc]


async def drain_hub(reader, got: list[int], latencies: list[float] | None) -> None:  # noqa: ANN001
    async for unit in reader:
        got[0] += 1
        if latencies is not None:
            latencies.append(time.time() - unit.wallclock)


async def measure_hub(units: list[AccessUnit], streams: int, readers: int, seconds: float) -> Run:
    stop = asyncio.Event()
    hubs = [Stream(f"s{i}", idle_source) for i in range(streams)]  # the replay calls Stream.write itself
    counters = [[0] for _ in hubs]
    got = [[0] for _ in range(streams * readers)]
    latencies: list[float] = []
    all_readers = [h.subscribe(f"r{j}") for h in hubs for j in range(readers)]
    tasks = [asyncio.create_task(drain_hub(r, got[k], latencies if k % max(readers, 1) == 0 else None))
             for k, r in enumerate(all_readers)]
    writers = [asyncio.create_task(replay(units, h.write, stop, c)) for h, c in zip(hubs, counters)]
    return await _measure(stop, writers, tasks, counters, got, latencies, streams, readers, seconds,
                          skips=lambda: sum(r.skips for r in all_readers), close=lambda: asyncio.gather(*(h.close() for h in hubs)))


async def measure_relay(units: list[AccessUnit], streams: int, readers: int, seconds: float) -> Run:
    """The anchor: aiortc MediaRelay, which keeps one unbounded asyncio.Queue per subscriber."""
    from aiortc.contrib.media import MediaRelay
    from aiortc.mediastreams import MediaStreamTrack

    stop = asyncio.Event()
    counters = [[0] for _ in range(streams)]

    class Source(MediaStreamTrack):
        kind = "video"

        def __init__(self, counter: list[int]) -> None:
            super().__init__()
            self._queue: asyncio.Queue[AccessUnit] = asyncio.Queue()
            self.counter = counter

        async def recv(self) -> AccessUnit:  # type: ignore[override]
            return await self._queue.get()

    sources = [Source(c) for c in counters]
    relay = MediaRelay()
    proxies = [relay.subscribe(s, buffered=True) for s in sources for _ in range(readers)]
    got = [[0] for _ in proxies]
    latencies: list[float] = []

    async def drain(proxy, got: list[int], lat: list[float] | None) -> None:  # noqa: ANN001
        while True:
            unit = await proxy.recv()
            got[0] += 1
            if lat is not None:
                lat.append(time.time() - unit.wallclock)

    tasks = [asyncio.create_task(drain(p, got[k], latencies if k % max(readers, 1) == 0 else None))
             for k, p in enumerate(proxies)]
    writers = [asyncio.create_task(replay(units, s._queue.put_nowait, stop, s.counter)) for s in sources]  # noqa: SLF001
    return await _measure(stop, writers, tasks, counters, got, latencies, streams, readers, seconds,
                          skips=lambda: 0, close=lambda: asyncio.gather(*(asyncio.to_thread(s.stop) for s in sources)))


async def _measure(stop, writers, tasks, counters, got, latencies, streams, readers, seconds, *, skips, close) -> Run:  # noqa: ANN001
    await asyncio.sleep(0.5)  # warm up: every task has run once
    for g in got:
        g[0] = 0
    latencies.clear()
    start_counts = [c[0] for c in counters]
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    emitted = min(c[0] - s for c, s in zip(counters, start_counts))
    stop.set()
    skipped = skips()
    await close()
    for t in tasks + writers:
        t.cancel()
    await asyncio.gather(*tasks, *writers, return_exceptions=True)
    lat = sorted(latencies)
    return Run(
        streams, readers, cpu, wall, emitted, int(wall * FPS),
        min((g[0] for g in got), default=0), skipped,
        lat[int(len(lat) * 0.99) - 1] if lat else 0.0,
    )


def report(kind: str, runs: list[Run]) -> dict[tuple[int, int], float]:
    per_reader: dict[tuple[int, int], float] = {}
    by_streams: dict[int, list[Run]] = {}
    for r in runs:
        by_streams.setdefault(r.streams, []).append(r)
    for streams, rs in by_streams.items():
        base = next(r for r in rs if r.readers == 0).per_stream_second
        print(f"\n{kind}: {streams} stream(s); baseline (N=0: replay + write) {base:.4f} CPU-s per stream-second")
        print(f"{'N/stream':>8} {'CPU cores':>9} {'CPU-s/stream-s':>14} {'per reader':>10} {'p99 lat ms':>10} "
              f"{'delivered':>10} {'skips':>5}  real time")
        best = 0
        for r in rs:
            each = (r.per_stream_second - base) / r.readers if r.readers else 0.0
            per_reader[(streams, r.readers)] = each
            if r.real_time:
                best = max(best, r.readers)
            print(f"{r.readers:>8} {r.cpu / r.wall:>9.3f} {r.per_stream_second:>14.4f} {each:>10.5f} "
                  f"{r.p99_latency * 1000:>10.1f} {r.min_delivered:>4}/{r.emitted:<5} {r.skips:>5}  "
                  f"{'yes' if r.real_time else 'NO'}")
        print(f"largest N per stream that keeps real time: {best} ({best * streams} readers in all)")
    return per_reader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    ap.add_argument("--streams", default="1,10")
    ap.add_argument("--readers", default="0,1,10,50,100,200")
    ap.add_argument("--no-anchor", action="store_true", help="skip aiortc MediaRelay")
    ap.add_argument("--no-uvloop", action="store_true", help="plain asyncio loop (vsgw serve uses uvloop)")
    args = ap.parse_args()
    run = asyncio.run
    if not args.no_uvloop:
        import uvloop

        run = uvloop.run
    t = time.process_time()
    units, bitrate = prerender(4.0)
    print(f"pre-rendered {len(units)} units of 1280x720 H.264 at {bitrate / 1e6:.2f} Mbit/s "
          f"(mean {statistics.mean(u.size for u in units) / 1000:.1f} kB) in {time.process_time() - t:.1f} CPU-s; "
          f"loop: {'asyncio' if args.no_uvloop else 'uvloop'}")
    grid = [(s, n) for s in map(int, args.streams.split(",")) for n in map(int, args.readers.split(","))]
    hub = report("vsgw hub", [run(measure_hub(units, s, n, args.seconds)) for s, n in grid])
    if args.no_anchor:
        return
    relay = report("anchor: aiortc MediaRelay (buffered)", [run(measure_relay(units, s, n, args.seconds)) for s, n in grid])
    print("\nper-reader cost, side by side (CPU-s per stream-second; goal <= 0.010)")
    print(f"{'streams':>7} {'N':>4} {'hub':>9} {'MediaRelay':>10} {'relay/hub':>9}  hub meets goal")
    for key in sorted(k for k in hub if k[1]):
        h, a = hub[key], relay.get(key, float("nan"))
        ratio = a / h if h > 0 else float("nan")
        print(f"{key[0]:>7} {key[1]:>4} {h:>9.5f} {a:>10.5f} {ratio:>9.1f}  {'yes' if h <= GOAL else 'NO'}")


if __name__ == "__main__":
    main()
