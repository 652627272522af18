"""``vsgw serve`` and ``vsgw demo``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from gateway.config import Config, ConfigError

DEMO_CAMERAS = [
    {"id": f"demo-{i}", "kind": "synthetic", "name": name, "width": 640, "height": 360, "fps": 25, "gop": 50,
     "bitrate": 800_000}
    for i, name in enumerate(["East Gate 东门", "Square 广场", "Station 车站", "Bridge 大桥"], start=1)
]


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("-c", "--config", help="TOML config file (VSGW_* environment variables override it)")
    serve.set_defaults(func=_serve)
    demo = sub.add_parser("demo", help="run the gateway with synthetic cameras on the embedded defaults")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--data-dir", default="var/demo")
    demo.set_defaults(func=_demo)


def _serve(args: argparse.Namespace) -> object:
    try:
        config = Config.load(args.config)
    except ConfigError as exc:
        print(f"vsgw: configuration error: {exc}", file=sys.stderr)
        return 2
    return _run(config, demo=False)


def _demo(args: argparse.Namespace) -> object:
    raw = {"node": {"data_dir": args.data_dir}, "http": {"port": args.port}, "cameras": DEMO_CAMERAS}
    try:
        config = Config(raw)
    except ConfigError as exc:
        print(f"vsgw: configuration error: {exc}", file=sys.stderr)
        return 2
    return _run(config, demo=True)


async def _run(config: Config, demo: bool) -> int:
    from gateway.app import Gateway

    gw = Gateway(config)
    await gw.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    base = f"http://{'127.0.0.1' if gw.app_host in ('0.0.0.0', '::') else gw.app_host}:{gw.http_port}"
    token = gw.tokens[0]
    print(f"vsgw {gw.version} serving on {base}  (node {gw.node}, storage {gw.db.dialect})", flush=True)
    if demo:
        first = next(iter(gw.registry.channels), "demo-1")
        for line in gw.demo_links(base, token, first):
            print(line, flush=True)
        print("Press Ctrl+C to stop.", flush=True)
    await stop.wait()
    await gw.stop()
    return 0
