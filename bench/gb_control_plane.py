"""GB/T 28181 control-plane capacity (issue 3 benchmark): how many devices one gateway core holds
registering and keeping alive at the default 60 s interval with < 50 % CPU (goal >= 20,000).

The gateway's SIP server (``GbServer``: registrar with MD5 digest, keepalive liveness sweeper,
UDP transport with transaction cache, on uvloop like ``vsgw serve``) runs in its own process; a
load generator in ANOTHER process registers N devices over UDP (401 challenge, digest answer,
200) from many sockets, then sends keepalives at rate r/s. Gateway CPU comes from
/proc/<pid>/stat. Per-keepalive cost at a high rate gives the capacity; a steady run at exactly
N/60 keepalives/s (plus the N/3600 re-registrations of 1 h expiry) checks it directly.

There is no published per-core figure to compare with (WVP's maintainer: "no official figures",
issue #1568; one user struggled at 25,000 devices on 16 cores), so the goal is the anchor.

    .venv/bin/python bench/gb_control_plane.py [--devices 20000] [--seconds 20] [--burst-rate 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_DEVICES = 20_000
CPU_BUDGET = 0.5  # of one core
INTERVAL = 60.0
SERVER_ID, REALM, PASSWORD = "34020000002000000001", "3402000000", "bench-pw"
CLK = os.sysconf("SC_CLK_TCK")


# -- gateway process ---------------------------------------------------------------------------
def gateway_main(conn) -> None:
    import uvloop

    from adapters.gb28181.config import SipConfig
    from adapters.gb28181.server import GbServer
    from gateway.metrics import Metrics

    async def main() -> None:
        metrics = Metrics()
        cfg = SipConfig(enabled=True, port=0, password=PASSWORD, keepalive_interval=INTERVAL)
        server = GbServer(cfg, metrics, lambda dev, online, reason: None)
        await server.start()
        conn.send(server.port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        conn.send({"online": sum(d.online for d in server.devices.by_id.values()),
                   "keepalives": metrics.value("vsgw_gb28181_keepalive_total", result="ok")})
        await server.stop()

    uvloop.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


# -- load generator process ----------------------------------------------------------------------
def load_main(port: int, devices: int, sockets: int, phases: list[tuple[float, float]], conn) -> None:
    import uvloop

    uvloop.run(Load(port, devices, sockets).run(phases, conn))


class Load(asyncio.DatagramProtocol):
    def __init__(self, port: int, devices: int, sockets: int) -> None:
        self.server = ("127.0.0.1", port)
        self.ids = [f"3402000000132{i:07d}" for i in range(devices)]
        self.nsock = sockets
        self.socks: list[asyncio.DatagramTransport] = []
        self.registered = 0
        self.ok_keepalives = 0
        self.cseq = 0
        self.done = asyncio.Event()

    def datagram_received(self, data: bytes, addr) -> None:
        if data.startswith(b"SIP/2.0 401"):
            self._answer_challenge(data)
        elif data.startswith(b"SIP/2.0 200"):
            if b" MESSAGE\r\n" in data:
                self.ok_keepalives += 1
            else:
                self.registered += 1

    def _answer_challenge(self, data: bytes) -> None:
        from adapters.gb28181 import digest

        text = data.decode()
        dev = text.split("From: <sip:", 1)[1][:20]
        challenge = text.split("WWW-Authenticate: ", 1)[1].split("\r\n", 1)[0]
        uri = f"sip:{SERVER_ID}@{REALM}"
        auth = digest.authorization(challenge, dev, PASSWORD, "REGISTER", uri)
        self.send(self.idx[dev], self.register(dev, auth))

    def msg(self, dev: str, method: str, extra: str = "", body: str = "") -> bytes:
        self.cseq += 1
        return (f"{method} sip:{SERVER_ID}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;rport;"
                f"branch=z9hG4bK{self.cseq}x{dev[-7:]}\r\nFrom: <sip:{dev}@{REALM}>;tag={dev[-6:]}\r\n"
                f"To: <sip:{dev}@{REALM}>\r\nCall-ID: {dev}@bench\r\nCSeq: {self.cseq} {method}\r\n"
                f"Max-Forwards: 70\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}").encode()

    def register(self, dev: str, auth: str = "") -> bytes:
        extra = f"Contact: <sip:{dev}@127.0.0.1:5060>\r\nExpires: 3600\r\n"
        if auth:
            extra += f"Authorization: {auth}\r\n"
        return self.msg(dev, "REGISTER", extra)

    def keepalive(self, dev: str) -> bytes:
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
                f"<SN>{self.cseq}</SN>\r\n<DeviceID>{dev}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n")
        return self.msg(dev, "MESSAGE", "Content-Type: Application/MANSCDP+xml\r\n", body)

    def send(self, i: int, data: bytes) -> None:
        self.socks[i % self.nsock].sendto(data, self.server)

    async def run(self, phases: list[tuple[float, float]], conn) -> None:
        loop = asyncio.get_running_loop()
        self.idx = {dev: i for i, dev in enumerate(self.ids)}
        for _ in range(self.nsock):
            t, _p = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
            t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.socks.append(t)
        t0 = time.perf_counter()
        for start in range(0, len(self.ids), 200):  # register, ~200 in flight
            for i in range(start, min(start + 200, len(self.ids))):
                self.send(i, self.register(self.ids[i]))
            while self.registered < min(start + 200, len(self.ids)) and time.perf_counter() - t0 < 120:
                await asyncio.sleep(0.002)
        conn.send(("registered", self.registered, time.perf_counter() - t0))
        for rate, seconds in phases:
            conn.recv()  # the parent samples CPU, then says go
            await self.keepalives(rate, seconds)
            conn.send(("phase", self.ok_keepalives))
        for t in self.socks:
            t.close()

    async def keepalives(self, rate: float, seconds: float) -> None:
        """``rate`` keepalives/s round-robin over the devices, plus re-registrations at N/3600/s."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = reg = 0
        n = len(self.ids)
        while (now := loop.time()) - start < seconds:
            due = int((now - start) * rate)
            while sent < due:
                self.send(sent % n, self.keepalive(self.ids[sent % n]))
                sent += 1
            due_reg = int((now - start) * n / 3600)
            while reg < due_reg:
                self.send(reg % n, self.register(self.ids[reg % n]))
                reg += 1
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)


# -- driver --------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--burst-rate", type=float, default=3000.0, help="keepalives/s for the per-message cost")
    ap.add_argument("--sockets", type=int, default=256)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    gw_conn, gw_child = ctx.Pipe()
    gw = ctx.Process(target=gateway_main, args=(gw_child,))
    gw.start()
    port = gw_conn.recv()
    steady = args.devices / INTERVAL
    phases = [(args.burst_rate, args.seconds), (steady, args.seconds)]
    ld_conn, ld_child = ctx.Pipe()
    load = ctx.Process(target=load_main, args=(port, args.devices, args.sockets, phases, ld_child))
    idle0 = cpu_seconds(gw.pid)
    load.start()
    _, registered, reg_wall = ld_conn.recv()
    reg_cpu = cpu_seconds(gw.pid) - idle0
    results = []
    for rate, seconds in phases:
        c0, t0 = cpu_seconds(gw.pid), time.perf_counter()
        ld_conn.send("go")
        _, oks = ld_conn.recv()
        results.append((rate, (cpu_seconds(gw.pid) - c0) / (time.perf_counter() - t0), oks))
    load.join()
    gw_conn.send("stop")
    final = gw_conn.recv()
    gw.join()

    burst_rate, burst_cpu, _ = results[0]
    per_keepalive = burst_cpu / burst_rate
    capacity = int(CPU_BUDGET / per_keepalive * INTERVAL)
    steady_rate, steady_cpu, _ = results[1]
    steady_capacity = int(CPU_BUDGET / (steady_cpu / args.devices))  # sweeper and idle costs included
    print(f"GB/T 28181 control plane, one gateway process (uvloop), load from another process, {os.cpu_count()} cores")
    print(f"  registration: {registered}/{args.devices} devices with digest in {reg_wall:.1f} s, "
          f"{reg_cpu / max(registered, 1) * 1e6:.0f} µs CPU per device (401 + 200)")
    print(f"  burst: {burst_rate:.0f} keepalives/s -> {burst_cpu * 100:.1f} % of a core, "
          f"{per_keepalive * 1e6:.0f} µs CPU per keepalive")
    print(f"  steady: {args.devices} devices at {INTERVAL:.0f} s ({steady_rate:.0f} keepalives/s + re-registrations) "
          f"-> {steady_cpu * 100:.1f} % of a core; online at the end: {final['online']}")
    print(f"  capacity at < {CPU_BUDGET:.0%} of a core: ~{steady_capacity:,} devices scaled from the steady run "
          f"(~{capacity:,} from the burst cost alone)   goal: >= {GOAL_DEVICES:,}   "
          f"ratio {steady_capacity / GOAL_DEVICES:.2f}x")


if __name__ == "__main__":
    main()
