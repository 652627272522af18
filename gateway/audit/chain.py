"""The durable audit trail (R10, R16, R18): append-only rows, each holding the hash of the one
before, with periodic checkpoints signed by the gateway's Ed25519 key.

``record()`` returns only once its row is committed. Concurrent records are group-committed: one
writer task takes everything queued and writes it in one transaction, so durability costs one
commit per batch rather than per event.

Retention (R18, Cybersecurity Law art. 21: at least 6 months): the gateway never deletes or
prunes audit rows, so there is no setting that could lower it; archiving beyond that is an
operator's export (``GET /api/audit/export``), not a deletion.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
import hashlib
import json
import logging
from pathlib import Path
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage import Base, Database
from gateway.storage.migrate import create_tables, migration

log = logging.getLogger(__name__)
GENESIS = "0" * 64


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
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signature: Mapped[str] = mapped_column(String(128))


migration("audit", 1, "audit records and signed checkpoints")(create_tables(AuditRow.__table__, CheckpointRow.__table__))


def row_hash(prev_hash: str, seq: int, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and a canonical JSON of the record."""
    body = json.dumps({"seq": seq, **fields}, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record_fields(row: AuditRow) -> dict[str, Any]:
    when = row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC)
    return {"time": when.isoformat(timespec="microseconds"), "actor": row.actor, "action": row.action,
            "resource": row.resource, "decision": row.decision, "reason": row.reason, "address": row.address,
            "request_id": row.request_id, "extra": row.extra or {}}


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    path.with_suffix(".pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


class ChainAudit:
    """The gateway's :class:`gateway.audit.AuditSink`."""

    def __init__(self, db: Database, key: Ed25519PrivateKey, checkpoint_every: int = 1000,
                 checkpoint_seconds: float = 60.0) -> None:
        self.db = db
        self.key = key
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds  # a signed head at least this often while writing
        self._last_checkpoint = time.monotonic()
        self._queue: list[tuple[dict[str, Any], asyncio.Future[int]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._seq = 0
        self._head = GENESIS
        self._since_checkpoint = 0
        self.batches = 0

    async def start(self) -> None:
        async with self.db.session() as s:
            last = (await s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))).first()
        if last is not None:
            self._seq, self._head = last.seq, last.hash
        self._task = asyncio.get_running_loop().create_task(self._writer(), name="audit-writer")

    async def stop(self) -> None:
        """Write what is queued, then sign the head; nothing acknowledged is lost."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None
        if self._since_checkpoint:
            async with self.db.session() as s:
                self._checkpoint(s)

    async def record(self, *, actor: str, action: str, resource: str, decision: str, reason: str = "",
                     address: str | None = None, request_id: str | None = None,
                     extra: dict[str, Any] | None = None) -> int:
        """Append one record; returns its sequence number once it is durable."""
        fields = {"time": datetime.now(UTC).isoformat(timespec="microseconds"), "actor": actor, "action": action,
                  "resource": resource, "decision": decision, "reason": reason, "address": address,
                  "request_id": request_id, "extra": extra or {}}
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
                seqs = await self._write(batch)
            except Exception as exc:  # nothing is acknowledged that is not durable
                log.exception("audit write failed; %d records refused", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(RuntimeError(f"audit trail unavailable: {exc}"))
                continue
            for (_, fut), seq in zip(batch, seqs):
                if not fut.done():
                    fut.set_result(seq)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[int]]]) -> list[int]:
        seq, head = self._seq, self._head
        rows, seqs = [], []
        for fields, _ in batch:
            seq += 1
            digest = row_hash(head, seq, fields)
            rows.append({**fields, "time": datetime.fromisoformat(fields["time"]), "seq": seq, "prev_hash": head,
                         "hash": digest})
            seqs.append(seq)
            head = digest
        sign = self._since_checkpoint + len(rows) >= self.checkpoint_every or \
            time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds
        async with self.db.session() as s:
            await s.execute(insert(AuditRow), rows)  # one executemany, not one ORM object per row
            if sign:
                self._checkpoint(s, seq, head)
        # the head moves only once the batch is committed: a failed commit leaves no gap in the chain
        self._seq, self._head = seq, head
        self._since_checkpoint = 0 if sign else self._since_checkpoint + len(rows)
        self.batches += 1
        return seqs

    def _checkpoint(self, session, seq: int | None = None, head: str | None = None) -> None:  # noqa: ANN001
        seq, head = (self._seq, self._head) if seq is None else (seq, head)
        if seq == 0:
            return
        session.add(CheckpointRow(seq=seq, hash=head, time=datetime.now(UTC),
                                  signature=self.key.sign(f"{seq}:{head}".encode()).hex()))
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
