"""Check the audit chain and its signed checkpoints; name the first record that was changed,
removed or reordered (R10)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from gateway.storage import Database

from .chain import GENESIS, AuditRow, CheckpointRow, record_fields, row_hash


@dataclass(slots=True)
class Verdict:
    ok: bool
    records: int
    checkpoints: int
    problem: str = ""
    seq: int | None = None  # the first bad record


async def verify_chain(db: Database, public_key: Ed25519PublicKey) -> Verdict:
    async with db.session() as s:
        rows = list(await s.scalars(select(AuditRow).order_by(AuditRow.seq)))
        checkpoints = list(await s.scalars(select(CheckpointRow).order_by(CheckpointRow.seq)))
    head, expected = GENESIS, 1
    hashes: dict[int, str] = {}
    for row in rows:
        if row.seq != expected:
            return Verdict(False, len(rows), len(checkpoints), f"record {expected} is missing (next is {row.seq})", expected)
        if row.prev_hash != head:
            return Verdict(False, len(rows), len(checkpoints), f"record {row.seq} does not follow record {row.seq - 1}", row.seq)
        if row_hash(head, row.seq, record_fields(row)) != row.hash:
            return Verdict(False, len(rows), len(checkpoints), f"record {row.seq} was altered", row.seq)
        head = row.hash
        hashes[row.seq] = head
        expected += 1
    for cp in checkpoints:
        try:
            public_key.verify(bytes.fromhex(cp.signature), f"{cp.seq}:{cp.hash}".encode())
        except (InvalidSignature, ValueError):
            return Verdict(False, len(rows), len(checkpoints), f"checkpoint at record {cp.seq} has a bad signature", cp.seq)
        if cp.seq not in hashes:
            return Verdict(False, len(rows), len(checkpoints),
                           f"records up to {cp.seq} were signed but the trail ends at {len(rows)}", len(rows) + 1)
        if hashes[cp.seq] != cp.hash:
            return Verdict(False, len(rows), len(checkpoints), f"the chain up to record {cp.seq} differs from what was signed", cp.seq)
    return Verdict(True, len(rows), len(checkpoints))
