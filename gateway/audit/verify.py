"""Check the audit chain, its signed checkpoints and, given one, the witness outside the database;
name the first record that was changed, removed, reordered or cut, and say which kind of tamper (R10).

The checks build on one another: the chain links every record to the one before (an edit shows
unless every later hash is recomputed); checkpoints sign heads with a key the database does not
hold (a recomputed chain no longer matches them, so they must go); no span between checkpoints and
no tail may be longer than the interval they were signed with (so they cannot just go); and the
witness keeps every checkpoint outside the database (so neither a rewrite of the last interval nor
a cut tail with its checkpoints goes unseen).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from gateway.storage import Database

from .chain import GENESIS, STOP, AuditRow, CheckpointRow, record_fields, row_hash, signed_message, stamp
from .witness import Entry


@dataclass(slots=True)
class Verdict:
    ok: bool
    records: int
    checkpoints: int
    problem: str = ""
    seq: int | None = None  # the first bad record
    end: str = ""  # how the trail ends (clean stop, signed head, or unsigned records)
    witnessed: int = 0  # witness lines checked
    notes: list[str] = field(default_factory=list)


class _Broken(Exception):
    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


async def verify_chain(db: Database, public_key: Ed25519PublicKey, every: int = 1000,
                       witness: list[tuple[int, Entry]] | None = None, stopped: bool = False) -> Verdict:
    """``every`` is the interval for a trail with no interval-signed checkpoint; ``witness`` the
    (line number, entry) pairs of a witness file; ``stopped`` requires the clean-stop marker at the tail."""
    async with db.session() as s:
        rows = list(await s.scalars(select(AuditRow).order_by(AuditRow.seq)))
        checkpoints = list(await s.scalars(select(CheckpointRow).order_by(CheckpointRow.seq)))
    verdict = Verdict(True, len(rows), len(checkpoints), witnessed=len(witness or []))
    try:
        hashes = _walk(rows)
        _signatures(checkpoints, hashes, public_key)
        if witness is not None:
            _witness(witness, checkpoints, hashes, public_key, verdict.notes)
        verdict.end = _coverage(checkpoints, len(rows), every, stopped)
    except _Broken as broken:
        verdict.ok, verdict.seq, verdict.problem = False, broken.seq, broken.problem
    return verdict


def _walk(rows: list[AuditRow]) -> dict[int, str]:
    head, expected = GENESIS, 1
    hashes: dict[int, str] = {}
    for row in rows:
        if row.seq != expected:
            raise _Broken(expected, f"record {expected} is missing (next is {row.seq})")
        if row.prev_hash != head:
            raise _Broken(row.seq, f"record {row.seq} does not follow record {row.seq - 1}")
        if row_hash(head, row.seq, record_fields(row)) != row.hash:
            raise _Broken(row.seq, f"record {row.seq} was altered")
        head = row.hash
        hashes[row.seq] = head
        expected += 1
    return hashes


def _valid(public_key: Ed25519PublicKey, signature: str, message: bytes) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _signatures(checkpoints: list[CheckpointRow], hashes: dict[int, str], public_key: Ed25519PublicKey) -> None:
    tail = len(hashes)
    for cp in checkpoints:
        if not _valid(public_key, cp.signature, signed_message(cp.seq, cp.hash, stamp(cp.time), cp.every, cp.kind)):
            raise _Broken(cp.seq, f"checkpoint at record {cp.seq} has a bad signature")
        if cp.seq not in hashes:
            raise _Broken(tail + 1, f"records up to {cp.seq} were signed but the trail ends at {tail}")
        if hashes[cp.seq] != cp.hash:
            raise _Broken(cp.seq, f"the chain up to record {cp.seq} differs from what was signed")


def _witness(entries: list[tuple[int, Entry]], checkpoints: list[CheckpointRow], hashes: dict[int, str],
             public_key: Ed25519PublicKey, notes: list[str]) -> None:
    """Every witnessed checkpoint must still be in the chain and in the database, and every
    interval-signed checkpoint in the database before the witness's last line must be witnessed."""
    tail, held = len(hashes), {cp.seq for cp in checkpoints}
    last = 0
    for line, e in entries:
        if not _valid(public_key, e.signature, signed_message(e.seq, e.hash, e.time, e.every, e.kind)):
            raise _Broken(e.seq, f"witness rewritten: line {line} (checkpoint {e.seq}) has a bad signature; "
                                 "the witness was edited, or it is not this gateway's")
        if e.seq <= last:
            raise _Broken(e.seq, f"witness rewritten: line {line} (checkpoint {e.seq}) comes after checkpoint {last}")
        if e.seq > tail:
            raise _Broken(tail + 1, f"truncated: the witness holds checkpoint {e.seq} (line {line}, signed {e.time}) "
                                    f"but the trail ends at record {tail}; records {tail + 1}..{e.seq} at least were cut")
        if hashes[e.seq] != e.hash:
            raise _Broken(e.seq, f"rewritten: the chain at record {e.seq} no longer matches the head witnessed at "
                                 f"{e.time} (line {line}); a record in {last + 1}..{e.seq} was changed and the chain "
                                 "re-hashed")
        if e.seq not in held:
            raise _Broken(e.seq, f"checkpoint deleted: the witness holds checkpoint {e.seq} (line {line}, signed "
                                 f"{e.time}) and the database does not")
        last = e.seq
    witnessed = {e.seq for _, e in entries}
    for cp in checkpoints:
        if cp.every is None or cp.seq in witnessed:  # checkpoints without an interval predate the witness
            continue
        if cp.seq < last:
            raise _Broken(cp.seq, f"witness incomplete: checkpoint {cp.seq} is signed in the database but not in the "
                                  f"witness, which goes on to {last}; lines were removed from the witness (or it "
                                  "could not be written then: vsgw_audit_witness_write_failures_total)")
        notes.append(f"checkpoint {cp.seq} is not in the witness: signed after its last line (a crash between "
                     "the database commit and the witness append leaves this)")


def _coverage(checkpoints: list[CheckpointRow], tail: int, every: int, stopped: bool) -> str:
    """No span may run longer than the interval the checkpoint before it promised; returns how the trail ends."""
    prev, allowed = 0, None
    for cp in checkpoints:
        if cp.every is not None:  # older checkpoints signed no interval, so promised none
            limit = allowed or cp.every
            if cp.seq - prev > limit:
                raise _Broken(prev + 1, f"unsigned span: records {prev + 1}..{cp.seq - 1} have no signed checkpoint "
                                        f"though one is signed every {limit} records; checkpoints were deleted "
                                        "(as a re-hashed chain requires)")
        prev, allowed = cp.seq, cp.every
    limit = allowed or every
    last = checkpoints[-1] if checkpoints else None
    if tail - prev > limit:
        raise _Broken(prev + 1, f"unsigned tail: records {prev + 1}..{tail} have no signed checkpoint though one is "
                                f"signed every {limit} records; checkpoints were deleted or the chain was rewritten")
    clean = last is not None and last.seq == tail and last.kind == STOP
    if stopped and not clean:
        raise _Broken(prev + 1, f"no clean stop: the trail ends at record {tail} and its last checkpoint ({prev}) is "
                                "not the clean-stop marker; the tail was cut with its checkpoints, or the gateway "
                                "did not stop in an orderly way")
    if tail == 0:
        return "the trail is empty"
    if clean:
        return f"ends with the signed clean-stop marker at record {tail}"
    if prev == tail:
        return f"its last record ({tail}) is signed"
    return (f"records {prev + 1}..{tail} are not signed yet: the gateway is running or did not stop cleanly "
            "(only the witness can tell that from a cut tail)")
