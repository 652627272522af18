"""``vsgw audit verify``: walk the audit chain, its signed checkpoints and (``--witness``) the
witness outside the database offline (R10), and name the first record that was changed, removed,
reordered or cut. Exit status 0 only when intact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.config import Config, ConfigError, StorageConfig
from gateway.storage import Database

from .config import AuditConfig
from .verify import verify_chain
from .witness import Entry, WitnessError, read_witness


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="check the tamper-evident audit trail (R10, R18)")
    commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    check = commands.add_parser("verify", help="check the hash chain, signed checkpoints and the witness")
    check.add_argument("-c", "--config", help="TOML config file (gives the database and data dir)")
    check.add_argument("--db", help="database URL (default: the config's storage, else the data dir's SQLite file)")
    check.add_argument("--key", help="PEM public key of the gateway (default: <data_dir>/keys/audit-ed25519.pub)")
    check.add_argument("--witness", metavar="FILE",
                       help="the witness file to check against (the gateway writes <data_dir>/audit-witness.jsonl "
                            "unless audit.witness_path says otherwise); without it only the database is checked")
    check.add_argument("--stopped", action="store_true",
                       help="the gateway was stopped in an orderly way: the trail must end with its clean-stop marker")
    check.set_defaults(func=_verify)


def locate(config_path: str | None, db: str | None, key: str | None) -> tuple[str, Path]:
    """The database URL and public key a command works on (shared with ``vsgw user``)."""
    config = Config.load(config_path)
    url = db or config.get(StorageConfig).url or f"sqlite+aiosqlite:///{config.data_path('vsgw.db')}"
    return url, Path(key) if key else config.data_path("keys", "audit-ed25519.pub")


async def _verify(args: argparse.Namespace) -> int:
    witness: list[tuple[int, Entry]] | None = None
    torn = False
    try:
        url, key_path = locate(args.config, args.db, args.key)
        every = Config.load(args.config).get(AuditConfig).checkpoint_every
        public = serialization.load_pem_public_key(key_path.read_bytes())
        if args.witness:
            witness, torn = read_witness(Path(args.witness))
    except WitnessError as exc:
        print(f"audit trail BROKEN: witness rewritten: {args.witness} {exc}", file=sys.stderr)
        return 1
    except (ConfigError, OSError, ValueError) as exc:
        print(f"vsgw audit verify: {exc}", file=sys.stderr)
        return 2
    if not isinstance(public, Ed25519PublicKey):
        print("vsgw audit verify: the key is not an Ed25519 public key", file=sys.stderr)
        return 2
    db = Database(url)
    try:
        verdict = await verify_chain(db, public, every, witness, args.stopped)
    finally:
        await db.close()
    if torn:
        verdict.notes.append("the witness's last line was cut short (a crash while appending); it is not counted")
    for note in verdict.notes:
        print(f"note: {note}", file=sys.stderr)
    if verdict.ok:
        against = f", {verdict.witnessed} witnessed" if witness is not None else " (database only: no --witness)"
        print(f"audit trail intact: {verdict.records} records, {verdict.checkpoints} signed checkpoints{against}; "
              f"{verdict.end}")
        return 0
    where = f" at record {verdict.seq}" if verdict.seq is not None else ""
    print(f"audit trail BROKEN{where}: {verdict.problem}", file=sys.stderr)
    return 1
