"""``vsgw audit verify``: walk the audit chain and its signed checkpoints offline (R10) and name
the first record that was changed, removed or reordered. Exit status 0 only when intact."""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.config import Config, ConfigError, StorageConfig
from gateway.storage import Database

from .verify import verify_chain


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="check the tamper-evident audit trail (R10, R18)")
    commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    check = commands.add_parser("verify", help="check the hash chain and signed checkpoints")
    check.add_argument("-c", "--config", help="TOML config file (gives the database and data dir)")
    check.add_argument("--db", help="database URL (default: the config's storage, else the data dir's SQLite file)")
    check.add_argument("--key", help="PEM public key of the gateway (default: <data_dir>/keys/audit-ed25519.pub)")
    check.set_defaults(func=_verify)


def locate(config_path: str | None, db: str | None, key: str | None) -> tuple[str, Path]:
    """The database URL and public key a command works on (shared with ``vsgw user``)."""
    config = Config.load(config_path)
    url = db or config.get(StorageConfig).url or f"sqlite+aiosqlite:///{config.data_path('vsgw.db')}"
    return url, Path(key) if key else config.data_path("keys", "audit-ed25519.pub")


async def _verify(args: argparse.Namespace) -> int:
    try:
        url, key_path = locate(args.config, args.db, args.key)
        public = serialization.load_pem_public_key(key_path.read_bytes())
    except (ConfigError, OSError, ValueError) as exc:
        print(f"vsgw audit verify: {exc}", file=sys.stderr)
        return 2
    if not isinstance(public, Ed25519PublicKey):
        print("vsgw audit verify: the key is not an Ed25519 public key", file=sys.stderr)
        return 2
    db = Database(url)
    try:
        verdict = await verify_chain(db, public)
    finally:
        await db.close()
    if verdict.ok:
        print(f"audit trail intact: {verdict.records} records, {verdict.checkpoints} signed checkpoints")
        return 0
    print(f"audit trail BROKEN at record {verdict.seq}: {verdict.problem}", file=sys.stderr)
    return 1
