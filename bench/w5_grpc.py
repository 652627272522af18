"""W5: gRPC live pull — gateway CPU per Mbit/s, msgs/s and Mbit/s per core, p99 hub→client delay.

M synthetic cameras (720p25, 2 Mbit/s with noise, pre-rendered once and replayed) in a gateway
with mTLS gRPC in this process; N pulling clients per camera in other processes (one HTTP/2
connection per process). Side by side, in the same run: a plain grpc.aio server (same TLS) that
streams messages of the same sizes at the same pace, with no hub and no policy gate.
The delay is capture (hub write) to client receive, on the one machine clock.

    .venv/bin/python bench/w5_grpc.py [--cameras 8] [--clients 8] [--procs 4] [--seconds 10]
                                      [--width 1920 --height 1080 --mbit 8]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402

from gateway.egress.grpc.certs import write_dev_pki  # noqa: E402
from gateway.policy import Subject  # noqa: E402
from proto.vsgw.v1 import vsgw_pb2 as pb  # noqa: E402
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc  # noqa: E402
from gateway.policy import InternalAccess  # noqa: E402

TEST_READER = InternalAccess("test")

CLIENT = "police-image-platform"


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def client_proc(target: str, pki: dict[str, str], cameras: list[str], seconds: float, start: Any, out: mp.Queue) -> None:
    """One client process: one mTLS channel (one HTTP/2 connection) carrying a PullLive per camera.
    It reports "ready" once every pull has had its cached GOP, then counts what arrives in the
    window [start, start + seconds] the parent sets, the span the server's CPU is measured over."""
    ready = asyncio.Event()
    waiting = len(cameras)

    async def pull(stub: rpc.StreamServiceStub, camera: str) -> tuple[int, int, list[float]]:
        nonlocal waiting
        call = stub.PullLive(pb.PullLiveRequest(camera_id=camera))
        msgs = nbytes = units = 0
        live = False  # the cached GOP comes first, up to a GOP old: its delays are not the hub's
        delays: list[float] = []
        async for msg in call:
            now = time.time()
            if not msg.HasField("unit"):
                continue
            units += 1
            if not live and msg.unit.keyframe and units > 1:
                live = True
                waiting -= 1
                if not waiting:
                    ready.set()
            first = start.value
            if first and first <= now <= first + seconds:
                msgs += 1
                nbytes += len(msg.unit.data)
                delays.append(now - msg.unit.capture_time.ToNanoseconds() / 1e9)
            if first and now > first + seconds:
                break
        call.cancel()
        return msgs, nbytes, delays

    async def run() -> None:
        from gateway.tools.pull import channel

        async with channel(target, pki["ca.pem"], pki[f"{CLIENT}.pem"], pki[f"{CLIENT}.key"], None) as ch:
            stub = rpc.StreamServiceStub(ch)
            pulls = asyncio.gather(*(pull(stub, cam) for cam in cameras))
            await ready.wait()
            out.put("ready")
            results = await pulls
        out.put((sum(r[0] for r in results), sum(r[1] for r in results), [d for r in results for d in r[2]]))

    from gateway.cli import run as run_loop

    run_loop(run())


async def measure(target: str, pki: dict[str, str], cameras: list[str], args: argparse.Namespace) -> dict:
    """Pulls spread over ``args.procs`` client processes; the server's CPU over a steady window
    that opens once every pull is live (past its cached GOP)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start = ctx.Value("d", 0.0, lock=False)
    pulls = [cam for cam in cameras for _ in range(args.clients)]
    shares = [share for share in (pulls[i::args.procs] for i in range(args.procs)) if share]
    procs = [ctx.Process(target=client_proc, args=(target, pki, share, args.seconds, start, out)) for share in shares]
    for p in procs:
        p.start()
    for _ in procs:
        assert await asyncio.to_thread(out.get, True, 120) == "ready"
    await asyncio.sleep(1.0)
    c0, w0 = cpu_seconds(), time.time()
    start.value = w0
    await asyncio.sleep(args.seconds)
    cpu, wall = cpu_seconds() - c0, time.time() - w0
    results = [await asyncio.to_thread(out.get) for _ in procs]
    for p in procs:
        p.join()
    span = args.seconds
    delays = sorted(d for r in results for d in r[2])
    return {"cores": cpu / wall, "msgs_s": sum(r[0] for r in results) / span,
            "mbit_s": sum(r[1] for r in results) * 8 / 1e6 / span,
            "p50_ms": 1000 * delays[len(delays) // 2] if delays else float("nan"),
            "p99_ms": 1000 * delays[int(0.99 * (len(delays) - 1))] if delays else float("nan")}


async def run_gateway(args: argparse.Namespace, pki: dict[str, str], data: Path) -> tuple[dict, list[bytes]]:
    from gateway.app import Gateway
    from gateway.config import Config

    cams = [{"id": f"cam-{i}", "kind": "synthetic", "width": args.width, "height": args.height, "fps": 25, "gop": 50,
             "bitrate": int(args.mbit * 1e6), "noise": 24, "loop_seconds": 2} for i in range(args.cameras)]
    config = Config({"node": {"data_dir": str(data)}, "http": {"port": 0, "tokens": ["bench"]}, "cameras": cams,
                     "grpc": {"enabled": True, "port": 0, "cert": pki["server.pem"], "key": pki["server.key"],
                              "client_ca": pki["ca.pem"]}}, env={})
    gw = Gateway(config)
    await gw.start()
    gw.certificate_subject = lambda cn: Subject(id=f"cert:{cn}", kind="client", name=cn, roles=frozenset({"platform"}),
                                                tier="police", clearance=5)
    try:
        keep = [gw.hub.subscribe(TEST_READER, c["id"], name="warm") for c in cams]  # pre-render before measuring
        for r in keep:
            await r.get()
        result = await measure(f"127.0.0.1:{gw.grpc.port}", pki, [c["id"] for c in cams], args)
        result["skips"] = int(sum(gw.metrics.value("vsgw_grpc_reader_skips_total", stream=c["id"]) for c in cams))
        for r in keep:
            r.close()
        loop_units = gw.registry.adapter_for("cam-0")._loops["cam-0"]  # the pre-rendered 720p pictures
        return result, [u.data for u in loop_units]
    finally:
        await gw.stop()


class Echo(rpc.StreamServiceServicer):
    """Streams the same payloads, paced at 25 fps, with no hub, policy or registry."""

    def __init__(self, payloads: list[bytes]) -> None:
        self.payloads = payloads

    async def PullLive(self, request, context):  # noqa: ANN001, ANN201
        loop = asyncio.get_running_loop()
        start, i = loop.time(), 0
        yield pb.MediaMessage(info=pb.StreamInfo(codec="h264"))
        while True:
            msg = pb.AccessUnit(pts=i * 3600, dts=i * 3600, keyframe=i % 50 == 0, data=self.payloads[i % len(self.payloads)])
            msg.capture_time.FromNanoseconds(time.time_ns())
            yield pb.MediaMessage(unit=msg)
            i += 1
            await asyncio.sleep(max(0.0, start + i / 25 - loop.time()))


async def run_echo(args: argparse.Namespace, pki: dict[str, str], payloads: list[bytes]) -> dict:
    server = grpc.aio.server()
    rpc.add_StreamServiceServicer_to_server(Echo(payloads), server)
    creds = grpc.ssl_server_credentials([(Path(pki["server.key"]).read_bytes(), Path(pki["server.pem"]).read_bytes())],
                                        root_certificates=Path(pki["ca.pem"]).read_bytes(), require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        return {**await measure(f"127.0.0.1:{port}", pki, [f"cam-{i}" for i in range(args.cameras)], args), "skips": 0}
    finally:
        await server.stop(0)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cameras", type=int, default=8)
    p.add_argument("--clients", type=int, default=8, help="pulling clients per camera")
    p.add_argument("--procs", type=int, default=4, help="client processes the pulls are spread over")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--mbit", type=float, default=2.0, help="camera bitrate, Mbit/s")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = {k: str(v) for k, v in write_dev_pki(Path(tmp) / "pki").items()}
        gw, payloads = await run_gateway(args, pki, Path(tmp) / "data")
        echo = await run_echo(args, pki, payloads)
    size = sum(map(len, payloads)) / len(payloads)
    print(f"W5: {args.cameras} cameras x {args.clients} clients over {args.procs} client processes; {args.width}x{args.height}p25, "
          f"{size * 8 * 25 / 1e6:.2f} Mbit/s, mean message {size / 1024:.1f} KiB; mTLS; {args.seconds:.0f} s window")
    print(f"{'server':6} {'cores':>6} {'msgs/s':>7} {'Mbit/s':>7} {'ms CPU/Mbit':>11} {'msgs/s/core':>11} "
          f"{'Mbit/s/core':>11} {'p50 ms':>7} {'p99 ms':>7} {'skips':>5}")
    for name, r in (("vsgw", gw), ("echo", echo)):
        cores = max(r["cores"], 1e-9)
        print(f"{name:6} {r['cores']:6.3f} {r['msgs_s']:7.0f} {r['mbit_s']:7.1f} {1000 * cores / r['mbit_s']:11.2f} "
              f"{r['msgs_s'] / cores:11.0f} {r['mbit_s'] / cores:11.0f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} {r['skips']:5d}")
    ratio = (gw["mbit_s"] / gw["cores"]) / (echo["mbit_s"] / echo["cores"])
    print(f"vsgw Mbit/s per core = {ratio:.2f} x the plain grpc.aio stream's; goal >= 1,500 Mbit/s per core: "
          f"{'met' if gw['mbit_s'] / gw['cores'] >= 1500 else 'NOT met'}")

if __name__ == "__main__":
    from gateway.cli import run

    run(main())  # the event loop `vsgw serve` runs on (uvloop when installed)
