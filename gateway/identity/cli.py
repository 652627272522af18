"""``vsgw user add``: create a user in the gateway's database (the bootstrap for the first admin).
Prints the TOTP secret and otpauth URI when the role needs a second factor (R18, MLPS level 3)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

import pyotp

from gateway.config import Config, ConfigError, StorageConfig
from gateway.storage import Database

from .models import ROLES
from .service import Identity, IdentityConfig


def register(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="manage gateway users")
    commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = commands.add_parser("add", help="add a user (password from VSGW_PASSWORD or a prompt)")
    add.add_argument("username")
    add.add_argument("--role", action="append", required=True, choices=sorted(ROLES), help="repeatable")
    add.add_argument("--unit")
    add.add_argument("--district")
    add.add_argument("--clearance", type=int, default=1)
    add.add_argument("--tier", choices=["sharing", "police", "emergency"], default="sharing")
    add.add_argument("-c", "--config", help="TOML config file")
    add.add_argument("--data-dir", help="data directory (e.g. var/demo for vsgw demo)")
    add.add_argument("--db", help="database URL")
    add.set_defaults(func=_add)


async def _add(args: argparse.Namespace) -> int:
    try:
        config = Config({"node": {"data_dir": args.data_dir}}) if args.data_dir else Config.load(args.config)
    except ConfigError as exc:
        print(f"vsgw user add: {exc}", file=sys.stderr)
        return 2
    url = args.db or config.get(StorageConfig).url or f"sqlite+aiosqlite:///{config.data_path('vsgw.db')}"
    password = os.environ.get("VSGW_PASSWORD") or getpass.getpass(f"password for {args.username}: ")
    db = Database(url)
    try:
        await db.migrate()
        secret = await Identity(db, config.get(IdentityConfig)).add_user(
            args.username, password, args.role, unit=args.unit, district=args.district,
            clearance=args.clearance, tier=args.tier)
    except ValueError as exc:
        print(f"vsgw user add: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.close()
    print(f"user {args.username} added with roles {', '.join(args.role)}")
    if secret:
        print(f"TOTP secret (privileged role): {secret}")
        print(f"otpauth URI: {pyotp.TOTP(secret).provisioning_uri(name=args.username, issuer_name='vsgw')}")
    return 0
