"""GB/T 28181 PS ingest cost (issue 3 benchmark): CPU per 2 Mbit/s camera over UDP and TCP.

About 2 s of 720p25 2 Mbit/s H.264 (the synthetic camera's ``PatternEncoder``, noise 24) is
encoded and muxed to GB-style PS once. A sender in ANOTHER process plays N cameras from it in
real time (frames staggered over the 40 ms frame interval, RTP seq/timestamps rewritten per
frame, RFC 4571 framing for TCP). The measured process (uvloop) runs one ``MediaSession`` per
camera (UDP, or TCP with the device connecting: tcp-passive) and a consumer per session that
counts the demuxed access units. Its CPU comes from ``getrusage``.

In the same run, a floor: a bare ``DatagramProtocol`` per camera that only counts bytes (what
receiving costs in Python before any RTP/PS work). Anchor from the notes (not runnable offline):
ZLMediaKit ≈ 0.0019 core per 2 Mbit/s stream (≈ 535 per core). Goal: ≥ 300 cameras per core.

With ``--audio`` each picture is followed by 40 ms of G.711A (a 320-byte audio PES in its own
pack, as cameras with audio on send it), which the demuxer turns into audio units.

    .venv/bin/python bench/gb_ps_ingest.py [--cameras 100] [--seconds 10] [--modes floor,udp,tcp] [--audio]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
from pathlib import Path
import pickle
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.gb28181.media import MediaSession, PortPool  # noqa: E402
from adapters.gb28181.ps import mux_ps  # noqa: E402
from adapters.gb28181.rtp import frame_4571, packetize_ps  # noqa: E402

FPS = 25
ZLM = 0.0019  # core per 2 Mbit/s stream, notes/gb28181 issue text
GOAL = 1 / 300
WARMUP = 2.0


def prerender(path: Path, audio: bool = False) -> float:
    from adapters.synthetic import PatternEncoder, PatternSpec
    from gateway.media import AccessUnit

    encoder = PatternEncoder(PatternSpec("bench", 1280, 720, FPS, 50, 2_000_000, noise=24))
    units = []
    while len(units) < 2 * FPS:
        units += encoder.encode()
    tone = bytes(range(0x40, 0x80)) * 5  # 320 samples of G.711A
    frames = [(u.dts, mux_ps(u, u.dts) + (mux_ps(AccessUnit("pcma", u.dts, u.dts, False, tone), u.dts)
                                          if audio else b"")) for u in units[: 2 * FPS]]
    path.write_bytes(pickle.dumps(frames))
    return sum(len(ps) for _, ps in frames) * 8 / 2 / 1e6


# -- sender process ------------------------------------------------------------------
def sender(clip: Path, transport: str, ports: list[int], seconds: float) -> None:
    frames = pickle.loads(clip.read_bytes())
    n = len(ports)
    socks = []
    for port in ports:
        if transport == "tcp":
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.connect(("127.0.0.1", port))
        socks.append(s)
    seq = [0] * n
    start = time.monotonic() + 0.1
    due = [(start + c / n / FPS, c, 0) for c in range(n)]
    heapq.heapify(due)
    end = start + seconds
    sent = late = 0
    while due:
        when, cam, k = due[0]
        now = time.monotonic()
        if when > now:
            time.sleep(when - now)
        heapq.heappop(due)
        if now - when > 0.04:
            late += 1
        dts, ps = frames[k % len(frames)]
        packets = packetize_ps(ps, seq[cam], k * 3600, 0x10000 + cam)
        seq[cam] = (seq[cam] + len(packets)) & 0xFFFF
        s = socks[cam]
        if transport == "tcp":
            s.sendall(b"".join(frame_4571(p) for p in packets))
        else:
            for p in packets:
                s.send(p)
        sent += 1
        if when + 1 / FPS < end:
            heapq.heappush(due, (when + 1 / FPS, cam, k + 1))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"frames": sent, "late": late, "cpu": usage.ru_utime + usage.ru_stime}), flush=True)
    for s in socks:
        s.close()


# -- measured process ----------------------------------------------------------------
class _Floor(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.bytes = 0
        self.packets = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.packets += 1
        self.bytes += len(data)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(mode: str, clip: Path, cameras: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    pool = PortPool(0, 0)
    sessions: list[MediaSession] = []
    floors: list[_Floor] = []
    counts = [0] * cameras
    closers = []
    ports: list[int] = []
    if mode == "floor":
        for _ in range(cameras):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
            transport, proto = await loop.create_datagram_endpoint(_Floor, sock=sock)
            floors.append(proto)
            closers.append(transport.close)
    else:
        for _ in range(cameras):
            session = MediaSession(pool, "127.0.0.1", "udp" if mode == "udp" else "tcp-passive", None)
            await session.open()
            sessions.append(session)
        ports = [s.port for s in sessions]

    async def consume(i: int, session: MediaSession) -> None:
        async for _ in session.units(silence=6.0):  # with the silence watchdog, as the adapter runs it
            counts[i] += 1

    tasks = [loop.create_task(consume(i, s)) for i, s in enumerate(sessions)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--send", str(clip), "tcp" if mode == "tcp" else "udp",
        str(seconds + WARMUP + 0.5), *map(str, ports), stdout=subprocess.PIPE)
    await asyncio.sleep(WARMUP)

    def snapshot() -> tuple[float, float, int, int]:
        if floors:
            return loop.time(), cpu(), sum(f.packets for f in floors), sum(f.bytes for f in floors)
        return loop.time(), cpu(), sum(counts), sum(s.bytes for s in sessions)

    t0, c0, u0, b0 = snapshot()
    await asyncio.sleep(seconds)
    t1, c1, u1, b1 = snapshot()
    out, _ = await proc.communicate()
    report = json.loads(out.decode().strip().splitlines()[-1])
    for s in sessions:
        await s.close()
    for close in closers:
        close()
    for task in tasks:
        await task
    wall = t1 - t0
    return {
        "mode": mode, "cameras": cameras, "wall": wall, "cpu": c1 - c0, "items": u1 - u0,
        "mbit": (b1 - b0) * 8 / wall / 1e6,
        "lost": sum(s.lost for s in sessions), "bad": sum(s.bad_packets for s in sessions),
        "ps_errors": sum(s.ps_errors for s in sessions), "sender_cpu": report["cpu"], "sender_late": report["late"],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        sender(Path(sys.argv[2]), sys.argv[3], [int(p) for p in sys.argv[5:]], float(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", default="100", help="comma-separated camera counts")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--modes", default="floor,udp,tcp")
    ap.add_argument("--audio", action="store_true", help="interleave 40 ms of G.711A after each picture")
    args = ap.parse_args()
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.pkl"
        t = time.perf_counter()
        rate = prerender(clip, args.audio)
        print(f"clip: 720p25, {rate:.2f} Mbit/s muxed PS, rendered in {time.perf_counter() - t:.1f} s; "
              f"anchor ZLMediaKit {ZLM:.4f} core/stream ({1 / ZLM:.0f}/core), goal >= 300/core")
        print("core/stream = CPU-s per second per 2 Mbit/s of PS actually received (so a sender that falls "
              "behind on this shared machine does not flatter the figure)")
        print(f"{'mode':6} {'cams':>5} {'Mbit/s':>8} {'units/s':>8} {'lost':>5} {'bad':>4} {'core/stream':>11} "
              f"{'streams/core':>12} {'vs ZLM':>7} {'vs goal':>7}  sender")
        for n in (int(x) for x in args.cameras.split(",")):
            for mode in args.modes.split(","):
                r = uvloop.run(measure(mode, clip, n, args.seconds))
                per = r["cpu"] / r["wall"] / (r["mbit"] / 2)
                units = "-" if mode == "floor" else f"{r['items'] / r['wall']:.0f}"
                print(f"{mode:6} {n:5d} {r['mbit']:8.1f} {units:>8} {r['lost']:5d} {r['bad']:4d} {per:11.5f} "
                      f"{1 / per:12.0f} {ZLM / per:6.2f}x {GOAL / per:6.2f}x  {r['sender_cpu']:.1f} CPU-s, "
                      f"{r['sender_late']} frames late", flush=True)


if __name__ == "__main__":
    main()
