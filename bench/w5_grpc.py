"""W5: gRPC live pull — gateway CPU per Mbit/s, msgs/s and Mbit/s per core, p99 hub→client delay.

M synthetic cameras (720p25, 2 Mbit/s with noise, pre-rendered once and replayed) in a gateway
with mTLS gRPC in this process; N pulling clients per camera in other processes. Side by side,
in the same run: a plain grpc.aio server (same TLS) that streams messages of the same sizes at
the same pace, with no hub and no policy gate — the floor a Python gRPC server can reach.

    .venv/bin/python bench/w5_grpc.py [--cameras 4] [--clients 4] [--seconds 15]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402

from gateway.egress.grpc.certs import write_dev_pki  # noqa: E402
from proto.vsgw.v1 import vsgw_pb2 as pb  # noqa: E402
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc  # noqa: E402

CLIENT = "police-image-platform"


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def client_proc(target: str, pki: dict[str, str], camera: str, seconds: float, out: mp.Queue) -> None:
    async def run() -> None:
        from gateway.tools.pull import channel

        async with channel(target, pki["ca.pem"], pki[f"{CLIENT}.pem"], pki[f"{CLIENT}.key"], None) as ch:
            call = rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id=camera))
            msgs = nbytes = 0
            delays: list[float] = []
            deadline = time.time() + seconds
            async for msg in call:
                now = time.time()
                if msg.HasField("unit"):
                    msgs += 1
                    nbytes += len(msg.unit.data)
                    delays.append(now - msg.unit.capture_time.ToNanoseconds() / 1e9)
                if now > deadline:
                    break
            call.cancel()
        out.put((msgs, nbytes, delays[50:]))  # skip the cached-GOP burst at the start

    asyncio.run(run())


async def measure(target: str, pki: dict[str, str], cameras: list[str], clients: int, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=client_proc, args=(target, pki, cam, seconds + 3, out))
             for cam in cameras for _ in range(clients)]
    for p in procs:
        p.start()
    await asyncio.sleep(3)  # connect + warm-up
    c0, w0 = cpu_seconds(), time.time()
    await asyncio.sleep(seconds)
    cpu, wall = cpu_seconds() - c0, time.time() - w0
    results = [await asyncio.to_thread(out.get) for _ in procs]
    for p in procs:
        p.join()
    msgs = sum(r[0] for r in results)
    mbit = sum(r[1] for r in results) * 8 / 1e6
    delays = sorted(d for r in results for d in r[2])
    span = seconds + 3
    return {"cores": cpu / wall, "msgs_s": msgs / span, "mbit_s": mbit / span,
            "p99_ms": 1000 * delays[int(0.99 * (len(delays) - 1))] if delays else float("nan")}


async def run_gateway(args: argparse.Namespace, pki: dict[str, str], data: Path) -> tuple[dict, list[bytes]]:
    from gateway.app import Gateway
    from gateway.config import Config

    cams = [{"id": f"cam-{i}", "kind": "synthetic", "width": 1280, "height": 720, "fps": 25, "gop": 50,
             "bitrate": 2_000_000, "noise": 24, "loop_seconds": 2} for i in range(args.cameras)]
    config = Config({"node": {"data_dir": str(data)}, "http": {"port": 0, "tokens": ["bench"]}, "cameras": cams,
                     "grpc": {"enabled": True, "port": 0, "cert": pki["server.pem"], "key": pki["server.key"],
                              "client_ca": pki["ca.pem"]}}, env={})
    gw = Gateway(config)
    await gw.start()
    try:
        keep = [gw.hub.subscribe(c["id"], name="warm") for c in cams]  # pre-render before measuring
        for r in keep:
            await r.get()
        sizes = [u.size for u in gw.hub.streams["cam-0"].gop]
        result = await measure(f"127.0.0.1:{gw.grpc.port}", pki, [c["id"] for c in cams], args.clients, args.seconds)
        for r in keep:
            r.close()
        loop_units = gw.adapters[0]._loops["cam-0"]
        return result, [u.data for u in loop_units] or [bytes(s) for s in sizes]
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
            msg = pb.AccessUnit(pts=i * 3600, dts=i * 3600, data=self.payloads[i % len(self.payloads)])
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
        return await measure(f"127.0.0.1:{port}", pki, [f"cam-{i}" for i in range(args.cameras)], args.clients, args.seconds)
    finally:
        await server.stop(0)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--clients", type=int, default=4, help="pulling clients per camera")
    p.add_argument("--seconds", type=float, default=15)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = {k: str(v) for k, v in write_dev_pki(Path(tmp) / "pki").items()}
        gw, payloads = await run_gateway(args, pki, Path(tmp) / "data")
        echo = await run_echo(args, pki, payloads)
    print(f"W5: {args.cameras} cameras x {args.clients} clients, 720p25 ~2 Mbit/s, mTLS, {args.seconds:.0f} s window")
    print(f"{'server':10} {'cores':>7} {'msgs/s':>8} {'Mbit/s':>8} {'core/Mbit/s':>12} {'Mbit/s/core':>12} {'p99 ms':>8}")
    for name, r in (("vsgw", gw), ("echo", echo)):
        per = r["cores"] / r["mbit_s"] if r["mbit_s"] else float("nan")
        print(f"{name:10} {r['cores']:7.3f} {r['msgs_s']:8.0f} {r['mbit_s']:8.1f} {per:12.5f} {1 / per:12.0f} {r['p99_ms']:8.1f}")
    print(f"vsgw / echo CPU per Mbit/s: {(gw['cores'] / gw['mbit_s']) / (echo['cores'] / echo['mbit_s']):.2f}x "
          f"(goal: >= 1,500 Mbit/s per core)")


if __name__ == "__main__":
    asyncio.run(main())
