"""W1 side by side: server CPU per WebRTC viewer of one 720p25 2 Mbit/s H.264 camera, measured
with the shared harness (``/work/shared/anchors/w1``: aiortc viewers that do not decode, on CPU 1;
the server pinned to CPU 0) for Janus 1.1.2 (streaming plugin fed the harness's RTP clip), vsgw
(packetise-once WHEP egress) and stock aiortc ``MediaRelay`` passthrough, one after the other in
one session. Run ``/work/shared/anchors/w1/setup.sh`` once first.

    .venv/bin/python bench/w1_compare.py [--ns 10,30,50] [--repeat 2] [--window 20]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parents[1]
W1 = Path(os.environ.get("W1_HARNESS", "/work/shared/anchors/w1"))
TOKEN = "w1"


def start_janus() -> tuple[list[subprocess.Popen], int, list[str]]:
    log = open("/tmp/w1/janus.log", "w")
    janus = subprocess.Popen([str(W1 / "janus/run.sh")], stdout=log, stderr=subprocess.STDOUT)
    time.sleep(2)
    feed = subprocess.Popen(["taskset", "-c", "0", str(W1 / "feed.sh")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(2)
    return [feed, janus], janus.pid, ["--janus", "http://127.0.0.1:8088/janus", "--mountpoint", "1"]


def start_python(mode: str, port: int) -> tuple[list[subprocess.Popen], int, list[str]]:
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(ROOT / "bench/w1_server.py"), "--mode", mode,
                             "--port", str(port), "--token", TOKEN], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("READY"):
            _, pid, url = line.split()
            time.sleep(2)
            return [proc], int(pid), ["--whep", url, "--token", TOKEN]
    raise SystemExit(f"{mode} server did not start")


def measure(pid: int, args: list[str], a: argparse.Namespace) -> tuple[str, dict[int, float]]:
    cmd = [sys.executable, str(W1 / "measure.py"), "--pid", str(pid), "--ns", a.ns, "--repeat", str(a.repeat),
           "--warmup", str(a.warmup), "--window", str(a.window), "--"] + args
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    means = {int(m[1]): float(m[2]) for m in re.finditer(r"# N=(\d+)\s+marginal=.*?mean=([\d.\-]+)", out)}
    return out, means


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="janus,vsgw,relay")
    ap.add_argument("--ns", default="10,30,50")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--window", type=float, default=20)
    a = ap.parse_args()
    results: dict[str, dict[int, float]] = {}
    for i, name in enumerate(a.servers.split(",")):
        procs, pid, args = start_janus() if name == "janus" else start_python(name, 8090 + i)
        try:
            out, results[name] = measure(pid, args, a)
            print(f"## {name}\n{out}", flush=True)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            time.sleep(2)
    names = list(results)
    print("# marginal server core per viewer (viewers per core); ratio = viewers/core vs Janus")
    print("N".rjust(4) + "".join(f"{n:>26}" for n in names))
    for n in sorted({k for r in results.values() for k in r}):
        row = f"{n:4d}"
        for name in names:
            m = results[name].get(n)
            ratio = (results.get("janus", {}).get(n) or 0) / m if m and m > 0 else float("nan")
            row += f"{(f'{m:.5f} ({1 / m:.0f}/core, {ratio:.2f}x)' if m and m > 0 else '-'):>26}"
        print(row)


if __name__ == "__main__":
    main()
