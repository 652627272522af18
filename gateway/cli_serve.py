"""``vsgw serve`` and ``vsgw demo``.

The demo runs every part on the embedded defaults: four synthetic cameras, a GB/T 28181
simulated device registered to the gateway's SIP server, continuous recording, gRPC with a
generated development PKI, and a wall operator login. It prints what to open.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import secrets
import signal
import sys

from gateway.config import Config, ConfigError

DEMO_CAMERAS = [
    {"id": f"demo-{i}", "kind": "synthetic", "name": name, "width": 640, "height": 360, "fps": 25, "gop": 50,
     "bitrate": 800_000}
    for i, name in enumerate(["East Gate 东门", "Square 广场", "Station 车站", "Bridge 大桥"], start=1)
]
DEMO_SIP_PASSWORD = "demo-sip-password"
DEMO_DEVICE = "34020000001320000001"
PLATFORM_CN = "police-image-platform"


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("-c", "--config", help="TOML config file (VSGW_* environment variables override it)")
    serve.set_defaults(func=_serve)
    demo = sub.add_parser("demo", help="run the gateway with demo cameras on the embedded defaults")
    demo.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free port)")
    demo.add_argument("--sip-port", type=int, default=5060)
    demo.add_argument("--grpc-port", type=int, default=50051)
    demo.add_argument("--data-dir", default="var/demo")
    demo.set_defaults(func=_demo)


def _serve(args: argparse.Namespace) -> object:
    try:
        config = Config.load(args.config)
    except ConfigError as exc:
        print(f"vsgw: configuration error: {exc}", file=sys.stderr)
        return 2
    return _run(config)


def _demo(args: argparse.Namespace) -> object:
    from gateway.egress.grpc.certs import write_dev_pki

    data = Path(args.data_dir)
    pki = data / "pki"
    if not (pki / "server.pem").exists():
        write_dev_pki(pki, clients=(PLATFORM_CN,))
    raw = {
        "node": {"data_dir": str(data)},
        "http": {"port": args.port},
        "cameras": DEMO_CAMERAS,
        "sip": {"enabled": True, "port": args.sip_port, "password": DEMO_SIP_PASSWORD},
        "recording": {"cameras": ["all"], "segment_seconds": 10},
        "grpc": {"enabled": True, "port": args.grpc_port, "cert": str(pki / "server.pem"),
                 "key": str(pki / "server.key"), "client_ca": str(pki / "ca.pem")},
        "identity": {"clients": [f"{PLATFORM_CN}=police:5"]},
    }
    if args.sip_port == 0:
        raw["sip"].update(rtp_low=0, rtp_high=0)
    try:
        config = Config(raw)
    except ConfigError as exc:
        print(f"vsgw: configuration error: {exc}", file=sys.stderr)
        return 2
    return _run(config, demo_pki=pki)


async def _run(config: Config, demo_pki: Path | None = None) -> int:
    from gateway.app import Gateway

    gw = Gateway(config)
    await gw.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    base = f"http://{'127.0.0.1' if gw.app_host in ('0.0.0.0', '::') else gw.app_host}:{gw.http_port}"
    print(f"vsgw {gw.version} serving on {base}  (node {gw.node}, storage {gw.db.dialect})", flush=True)
    simulator = None
    if demo_pki is not None:
        simulator = await _demo_extras(gw, base, demo_pki)
    await stop.wait()
    if simulator is not None:
        await simulator.stop()
    await gw.stop()
    return 0


async def _demo_extras(gw, base: str, pki: Path):  # noqa: ANN001, ANN202 - Gateway, Simulator
    """The GB/T 28181 device, the operator login, and the printed guide."""
    from adapters.gb28181.simulator import run_simulator

    simulator = await run_simulator("127.0.0.1", gw.gb28181.server.port, DEMO_DEVICE, DEMO_SIP_PASSWORD,
                                    channels=1, name="GB 模拟摄像机")
    login = gw.config.data_path("demo-login")
    if not login.exists():
        password = secrets.token_urlsafe(9)
        await gw.identity.add_user("operator", password, ["wall_operator"], clearance=2,
                                   display_name="Wall operator 值班员")
        login.write_text(password + "\n")
        login.chmod(0o600)
    token = gw.tokens[0]
    first = next(iter(gw.registry.channels), "demo-1")
    for line in gw.demo_links(base, token, first):
        print(line, flush=True)
    print(f"  {'Wall login':28} operator / {login.read_text().strip()}", flush=True)
    print(f"  {'GB/T 28181 SIP server':28} 127.0.0.1:{gw.gb28181.server.port} (device {DEMO_DEVICE} registered)",
          flush=True)
    print(f"  {'gRPC (mTLS) pull example':28} .venv/bin/python -m gateway.tools.pull {first} --out clip.ts "
          f"--target 127.0.0.1:{gw.grpc.port} --ca {pki}/ca.pem --cert {pki}/{PLATFORM_CN}.pem "
          f"--key {pki}/{PLATFORM_CN}.key --seconds 5", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    return simulator
