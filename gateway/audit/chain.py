"""The durable audit trail (R10, R16, R18): append-only rows, each holding the hash of the one
before, with checkpoints signed by the gateway's Ed25519 key at least every ``checkpoint_every``
records and every ``checkpoint_seconds`` while writing, and a clean-stop checkpoint at an orderly
shutdown. Each checkpoint signs its sequence, head hash, time, interval and kind, and is also
appended to the witness outside the database (:mod:`gateway.audit.witness`).

``record()`` returns only once its row is committed. Concurrent records are group-committed: one
writer task takes everything queued and writes it in one transaction, so durability costs one
commit per batch rather than per event.

Retention (R18, Cybersecurity Law art. 21: at least 6 months): the gateway never deletes or
prunes audit rows, so there is no setting that could lower it; archiving beyond that is an
operator's export (``GET /api/audit/export``), not a deletion.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text, insert, inspect, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage import Base, Database
from gateway.storage.migrate import create_tables, migration

from .witness import Entry, Witness

log = logging.getLogger(__name__)
GENESIS = "0" * 64
COUNT, TIMED, STOP = "count", "time", "stop"  # why a checkpoint was signed
SYSTEM = "system:vsgw"  # the actor of the gateway's own records


class AuditRow(Base):
    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    resource: Mapped[str] = mapped_column(String(200), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CheckpointRow(Base):
    """A signed head. ``every`` is the interval in force when it was signed, so the verifier knows
    how far the next checkpoint may be; rows from before it was signed have ``every`` null."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signature: Mapped[str] = mapped_column(String(128))
    every: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(8), nullable=True)


migration("audit", 1, "audit records and signed checkpoints")(create_tables(AuditRow.__table__, CheckpointRow.__table__))


@migration("audit", 2, "checkpoints sign their interval and kind (count, time, clean stop)")
def _checkpoint_interval(conn: Connection) -> None:
    have = {c["name"] for c in inspect(conn).get_columns(CheckpointRow.__tablename__)}
    for name in ("every", "kind"):
        if name not in have:
            column = CheckpointRow.__table__.c[name]
            conn.execute(sql_text(f"ALTER TABLE {CheckpointRow.__tablename__} ADD COLUMN {name} "
                                  f"{column.type.compile(conn.dialect)}"))


def stamp(value: datetime) -> str:
    """The one text form of a stored time (SQLite hands datetimes back naive; all are UTC)."""
    when = value if value.tzinfo else value.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def row_hash(prev_hash: str, seq: int, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and a canonical JSON of the record."""
    body = json.dumps({"seq": seq, **fields}, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record_fields(row: AuditRow) -> dict[str, Any]:
    return {"time": stamp(row.time), "actor": row.actor, "action": row.action,
            "resource": row.resource, "decision": row.decision, "reason": row.reason, "address": row.address,
            "request_id": row.request_id, "extra": row.extra or {}}


def signed_message(seq: int, head: str, when: str, every: int | None, kind: str | None) -> bytes:
    """What a checkpoint's signature covers; checkpoints without an interval signed only seq:head."""
    if every is None:
        return f"{seq}:{head}".encode()
    return f"vsgw-audit-checkpoint/2 {seq} {head} {when} {every} {kind}".encode()


def entry_of(cp: CheckpointRow) -> Entry:
    return Entry(cp.seq, cp.hash, stamp(cp.time), cp.every or 0, cp.kind or "", cp.signature)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The gateway's signing key, created once (mode 0600, public half beside it as ``.pub``)."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    tmp.chmod(0o600)
    path.with_suffix(".pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    tmp.replace(path)  # last: a key file that exists is whole and has its public half
    return key


class ChainAudit:
    """The gateway's :class:`gateway.audit.AuditSink`."""

    def __init__(self, db: Database, key: Ed25519PrivateKey, checkpoint_every: int = 1000,
                 checkpoint_seconds: float = 60.0, witness: Witness | None = None) -> None:
        self.db = db
        self.key = key
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds  # a signed head at least this often while writing
        self.witness = witness
        self._last_checkpoint = time.monotonic()
        self._queue: list[tuple[dict[str, Any], asyncio.Future[int]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._seq = 0
        self._head = GENESIS
        self._due = checkpoint_every  # the record at which the next checkpoint is signed at the latest
        self.batches = 0

    def configure(self, checkpoint_every: int, checkpoint_seconds: float, witness: Witness | None) -> None:
        """Set from ``[audit]`` before :meth:`start`."""
        self.checkpoint_every, self.checkpoint_seconds, self.witness = checkpoint_every, checkpoint_seconds, witness

    async def start(self) -> None:
        async with self.db.session() as s:
            last = (await s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))).first()
            signed = (await s.scalars(select(CheckpointRow).order_by(CheckpointRow.seq.desc()).limit(1))).first()
        if last is not None:
            self._seq, self._head = last.seq, last.hash
        # the next checkpoint keeps the promise of the last one, whichever interval is shorter
        signed_seq = signed.seq if signed else 0
        self._due = signed_seq + min(self.checkpoint_every, (signed.every if signed else None) or self.checkpoint_every)
        if self._seq and not (signed and signed.seq == self._seq and signed.kind == STOP):
            log.warning("audit trail: the previous run did not stop cleanly (records %d..%d unsigned)",
                        signed_seq + 1, self._seq)
        if self.witness is not None:
            await self.witness.start()
        self._task = asyncio.get_running_loop().create_task(self._writer(), name="audit-writer")

    async def stop(self) -> None:
        """Write what is queued, then record the orderly stop and sign it (the clean-stop marker)."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None
        fields = _fields(actor=SYSTEM, action="audit.stop", resource="audit:trail", decision="done",
                         reason="orderly shutdown; this record's checkpoint marks the end of the run")
        try:
            await self._write([fields], stop=True)
        except Exception:
            log.exception("audit trail: the clean-stop checkpoint could not be written")
        if self.witness is not None:
            await self.witness.stop()

    async def record(self, *, actor: str, action: str, resource: str, decision: str, reason: str = "",
                     address: str | None = None, request_id: str | None = None,
                     extra: dict[str, Any] | None = None) -> int:
        """Append one record; returns its sequence number once it is durable."""
        fields = _fields(actor=actor, action=action, resource=resource, decision=decision, reason=reason,
                         address=address, request_id=request_id, extra=extra)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((fields, future))
        self._wake.set()
        return await future

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                if self._closing:
                    return
                continue
            self._wake.set()  # look again after this batch: more may queue while it commits
            try:
                seqs = await self._write([fields for fields, _ in batch])
            except Exception as exc:  # nothing is acknowledged that is not durable
                log.exception("audit write failed; %d records refused", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(RuntimeError(f"audit trail unavailable: {exc}"))
                continue
            for (_, fut), seq in zip(batch, seqs):
                if not fut.done():
                    fut.set_result(seq)

    async def _write(self, batch: list[dict[str, Any]], stop: bool = False) -> list[int]:
        seq, head, due = self._seq, self._head, self._due
        rows, seqs, points = [], [], []
        for fields in batch:
            seq += 1
            digest = row_hash(head, seq, fields)
            rows.append({**fields, "time": datetime.fromisoformat(fields["time"]), "seq": seq, "prev_hash": head,
                         "hash": digest})
            seqs.append(seq)
            head = digest
            if seq >= due:  # exactly at the interval, even inside a large batch
                points.append([seq, digest, COUNT])
                due = seq + self.checkpoint_every
        timed = time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds
        if stop or timed:
            if not points or points[-1][0] != seq:
                points.append([seq, head, TIMED])
                due = seq + self.checkpoint_every
            if stop:
                points[-1][2] = STOP
        checkpoints = [self._sign(s, h, kind) for s, h, kind in points]
        async with self.db.session() as s:
            await s.execute(insert(AuditRow), rows)  # one executemany, not one ORM object per row
            s.add_all(checkpoints)
        # the head moves only once the batch is committed: a failed commit leaves no gap in the chain
        self._seq, self._head, self._due = seq, head, due
        self.batches += 1
        if checkpoints:
            self._last_checkpoint = time.monotonic()
            if self.witness is not None:  # after the commit: the witness never names an unwritten checkpoint
                await self.witness.append([entry_of(cp) for cp in checkpoints])
        return seqs

    def _sign(self, seq: int, head: str, kind: str) -> CheckpointRow:
        when = datetime.now(UTC)
        message = signed_message(seq, head, stamp(when), self.checkpoint_every, kind)
        return CheckpointRow(seq=seq, hash=head, time=when, signature=self.key.sign(message).hex(),
                             every=self.checkpoint_every, kind=kind)


def _fields(*, actor: str, action: str, resource: str, decision: str, reason: str = "", address: str | None = None,
            request_id: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"time": datetime.now(UTC).isoformat(timespec="microseconds"), "actor": actor, "action": action,
            "resource": resource, "decision": decision, "reason": reason, "address": address,
            "request_id": request_id, "extra": extra or {}}
