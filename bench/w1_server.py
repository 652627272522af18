"""W1 server side: one 720p25 2 Mbit/s H.264 camera served over WHEP, for the shared W1 harness
(``/work/shared/anchors/w1``, ``measure.py --whep``). Two servers with the same picture:

* ``vsgw``  — the gateway itself (synthetic camera with ``loop_seconds`` pre-render, noise 24,
  packetise-once WebRTC egress), on uvloop like ``vsgw serve``; a draining hub reader keeps
  ingest running with nobody watching, so N = 0 is a fair baseline (Janus ingests at N = 0 too).
* ``relay`` — stock aiortc: the same pre-rendered access units as ``av.Packet`` through
  ``MediaRelay`` to one ``RTCRtpSender`` per viewer (H.264 passthrough, no transcoding).

    .venv/bin/python bench/w1_server.py --mode vsgw --port 8090 --token w1
Prints ``READY <pid> <whep url>`` when it serves.
"""

from __future__ import annotations

import argparse
import asyncio
from fractions import Fraction
import os
from pathlib import Path
import sys
import tempfile
import time
from gateway.policy import InternalAccess  # noqa: E402

TEST_READER = InternalAccess("test")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CAMERA = {"id": "w1", "kind": "synthetic", "name": "W1 720p", "width": 1280, "height": 720, "fps": 25,
          "gop": 50, "bitrate": 2_000_000, "noise": 24, "loop_seconds": 10.0}


async def serve_vsgw(port: int, token: str, gop: int) -> None:
    from gateway.app import Gateway
    from gateway.config import Config

    cams = [dict(CAMERA, gop=gop)] + [dict(CAMERA, id=f"w1-gop{g}", gop=g) for g in (50, 100) if g != gop]
    cfg = Config({"node": {"data_dir": tempfile.mkdtemp(prefix="vsgw-w1-")}, "http": {"port": port, "tokens": [token]},
                  "webrtc": {"host_addresses": ["127.0.0.1"]}, "cameras": cams}, env={})
    gw = Gateway(cfg)
    await gw.start()
    readers = [gw.hub.subscribe(TEST_READER, c["id"], name="bench-warm") for c in cams]
    for r in readers:  # pre-render and first keyframe before we say READY
        await r.get()
    drains = [asyncio.ensure_future(_drain(r)) for r in readers]
    print(f"READY {os.getpid()} http://127.0.0.1:{gw.http_port}/api/whep/w1", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for d in drains:
            d.cancel()
        await gw.stop()


async def _drain(reader) -> None:  # noqa: ANN001
    async for _ in reader:
        pass


async def serve_relay(port: int, token: str, gop: int) -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    import av
    from aiohttp import web
    from aiortc import (MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender,
                        RTCSessionDescription)
    from aiortc.contrib.media import MediaRelay

    from adapters.synthetic import PatternSpec
    from adapters.synthetic import _prerender

    spec = PatternSpec("W1 720p", 1280, 720, 25, gop, 2_000_000, 24)
    units = await asyncio.to_thread(_prerender, spec, 10.0)

    class Replay(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.start = time.monotonic()

        async def recv(self) -> av.Packet:
            self.n += 1
            await asyncio.sleep(max(0.0, self.start + self.n / 25 - time.monotonic()))
            packet = av.Packet(units[self.n % len(units)].data)
            packet.pts, packet.time_base = self.n * 3600, Fraction(1, 90000)
            return packet

    relay, source = MediaRelay(), Replay()
    warm = relay.subscribe(source)
    asyncio.ensure_future(_drain_track(warm))
    pcs: dict[str, RTCPeerConnection] = {}
    h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]

    async def offer(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.Response(status=401)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = pc.addTransceiver(relay.subscribe(source), direction="sendonly")
        transceiver.setCodecPreferences(h264)
        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sid = str(id(pc))
        pcs[sid] = pc
        return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                            headers={"Location": f"/whep/w1/{sid}"})

    async def delete(request: web.Request) -> web.Response:
        pc = pcs.pop(request.match_info["sid"], None)
        if pc is not None:
            await pc.close()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/whep/w1", offer)
    app.router.add_delete("/whep/w1/{sid}", delete)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"READY {os.getpid()} http://127.0.0.1:{port}/whep/w1", flush=True)
    await asyncio.Event().wait()


async def _drain_track(track) -> None:  # noqa: ANN001
    while True:
        await track.recv()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["vsgw", "relay"], default="vsgw")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--token", default="w1")
    ap.add_argument("--gop", type=int, default=50)
    a = ap.parse_args()
    coro = serve_vsgw(a.port, a.token, a.gop) if a.mode == "vsgw" else serve_relay(a.port, a.token, a.gop)
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
