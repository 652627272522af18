"""What the capability and session controls add to opening a viewer, measured on a real gateway
(SQLite, durable audit chain) in one run, side by side:

- ``decision``: the gate's audited answer alone (``authorize`` of a typed request), the floor
  every egress paid before;
- ``WHEP setup``: that, plus the capability check where the hub reader is added, plus opening the
  video session (its start record is written behind the viewer: the decision is already durable);
  the session's end record is timed apart, as teardown;
- ``gRPC pull setup``: the same with the gRPC request builder and a narrowing identity.

Each row is timed over N sequential opens (sequential: per-viewer latency, not throughput) and
printed in ms per open with the added cost over the decision alone. Goal: added < 1 ms.

    .venv/bin/python bench/w11_session_cost.py [--n 500]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.app import Gateway  # noqa: E402
from gateway.config import Config  # noqa: E402
from gateway.policy import Action, Subject, grpc_access, subject_access  # noqa: E402


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gw = Gateway(Config({"node": {"data_dir": tmp}, "http": {"port": 0},
                             "cameras": [{"id": "cam-1", "kind": "synthetic"}]}, env={}))
        await gw.start()
        try:
            officer = Subject("user:li", roles=frozenset({"police_officer"}), clearance=3, tier="police",
                              session="0123456789abcdef")
            platform = Subject("cert:city", kind="client", roles=frozenset({"platform"}), clearance=5, tier="police")
            cam = gw.camera_resource("cam-1")
            warm = gw.hub.subscribe(await gw.policy.authorize(subject_access(officer, Action.VIEW_LIVE, cam, "whep")),
                                    "cam-1", name="warm")  # the stream runs; opens below only add readers

            async def decision() -> None:
                await gw.policy.authorize(subject_access(officer, Action.VIEW_LIVE, cam, "whep"))

            opened: list = []

            async def whep() -> None:
                d = await gw.policy.authorize(subject_access(officer, Action.VIEW_LIVE, cam, "whep"))
                reader = gw.hub.subscribe(d, "cam-1", name="webrtc")
                opened.append((reader, await gw.sessions.start(d, "live", lambda reason: reader.close())))

            async def grpc_pull() -> None:
                d = await gw.policy.authorize(grpc_access(platform, Action.PULL_STREAM, cam, on_behalf_of=officer))
                reader = gw.hub.subscribe(d, "cam-1", name="grpc")
                opened.append((reader, await gw.sessions.start(d, "live", lambda reason: reader.close())))

            samples: dict[str, list[float]] = {}
            rounds = 5  # interleaved, medians: the machine is shared
            for _ in range(rounds):
                for name, fn in (("decision", decision), ("WHEP setup", whep), ("gRPC pull setup", grpc_pull)):
                    t0 = time.perf_counter()
                    for _ in range(n // rounds):
                        await fn()
                    samples.setdefault(name, []).append((time.perf_counter() - t0) / (n // rounds) * 1000)
                    if opened:
                        t0 = time.perf_counter()
                        for reader, session in opened:  # teardown, timed apart: the viewer has left
                            await gw.sessions.end(session)
                            reader.close()
                        samples.setdefault(f"  {name} teardown", []).append(
                            (time.perf_counter() - t0) / len(opened) * 1000)
                        opened.clear()
            results = {name: statistics.median(values) for name, values in samples.items()}
            base = results["decision"]
            for name, ms in results.items():
                added = ms - base
                if name.endswith("teardown"):
                    print(f"{name:18} {ms:7.3f} ms/close (session end record, after the viewer left)")
                    continue
                print(f"{name:18} {ms:7.3f} ms/open   added over the decision {added:+7.3f} ms"
                      + ("" if name == "decision" else f"   goal < 1 ms: {'met' if added < 1 else 'NOT met'}"))
            warm.close()
        finally:
            await gw.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500)
    asyncio.run(main(parser.parse_args().n))
