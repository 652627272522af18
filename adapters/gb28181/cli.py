"""``vsgw gb-sim``: run a simulated GB/T 28181 device against a SIP server (R1)."""

from __future__ import annotations

import argparse
import asyncio

from .simulator import QUIRK_FLAGS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gb-sim", help="run a simulated GB/T 28181 device (registers, streams PS/RTP on INVITE)")
    p.add_argument("--server", default="127.0.0.1:5060", help="SIP server host:port")
    p.add_argument("--server-id", default="34020000002000000001")
    p.add_argument("--device-id", default="34020000001320000001")
    p.add_argument("--password", default="12345678")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    p.add_argument("--keepalive", type=float, default=60.0, help="keepalive interval, seconds")
    p.add_argument("--own-ssrc", action="store_true", help="quirk: answer INVITE with a different y=")
    p.add_argument("--split-catalog", action="store_true", help="quirk: one catalog item per MESSAGE")
    p.add_argument("--utf8", action="store_true", help="quirk: UTF-8 bodies instead of GB18030")
    p.add_argument("--no-keepalive", action="store_true", help="quirk: never send keepalives")
    p.add_argument("--quirk", action="append", default=[], metavar="NAME", choices=QUIRK_FLAGS,
                   help="a device-management quirk, repeatable: " + ", ".join(QUIRK_FLAGS))
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=_run)


async def _run(args: argparse.Namespace) -> int:
    from .simulator import Quirks, SimConfig, Simulator

    host, _, port = args.server.rpartition(":")
    quirks = Quirks(own_ssrc=args.own_ssrc, split_catalog=args.split_catalog,
                    charset="UTF-8" if args.utf8 else "GB2312", no_keepalive=args.no_keepalive,
                    **{name: True for name in args.quirk})
    sim = Simulator(SimConfig(host or "127.0.0.1", int(port), device_id=args.device_id, server_id=args.server_id,
                              password=args.password, channels=args.channels, transport=args.transport,
                              keepalive_interval=args.keepalive, quirks=quirks))
    await sim.start()
    print(f"gb-sim {args.device_id} registered to {args.server} over {args.transport}; channels: "
          + ", ".join(sim.cfg.channel_ids()), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
    return 0
