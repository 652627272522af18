"""What is recorded where: segments (hash-chained per camera), evidence locks, export jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, Index, Integer, String, Text, inspect
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage import Base
from gateway.storage.migrate import create_tables, migration

OPEN, CLOSED, PARTIAL, EXPIRED = "open", "closed", "partial", "expired"
PLAYABLE = (OPEN, CLOSED, PARTIAL)


class SegmentRow(Base):
    """One segment file. ``hash`` is SHA-256 of the file at close; ``prev_hash`` is the hash of the
    camera's previous segment, so a removed or altered segment breaks the chain (R10)."""

    __tablename__ = "recording_segments"
    __table_args__ = (Index("ix_recording_segments_camera_start", "camera", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    path: Mapped[str] = mapped_column(String(500))  # relative to the recording root
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    frames: Mapped[int] = mapped_column(Integer, default=0)
    codec: Mapped[str] = mapped_column(String(16), default="h264")
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)


class LockRow(Base):
    """An evidence lock: the camera's footage in [start, end) outlives retention until released.
    Release takes two people: one requests it with a reason, another confirms (``released_by``)."""

    __tablename__ = "recording_locks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    release_requested_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    release_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    release_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ExportRow(Base):
    """An export job and its result; ``review`` gates public-release copies (R14)."""

    __tablename__ = "recording_exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    mode: Mapped[str] = mapped_column(String(16))  # "original" | "public"
    reason: Mapped[str] = mapped_column(Text)
    grant_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    file: Mapped[str | None] = mapped_column(String(500), nullable=True)
    export_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    review: Mapped[str] = mapped_column(String(16), default="n/a")  # n/a | needs_review | approved | rejected
    reviewed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


migration("recording", 1, "segments, evidence locks, exports")(
    create_tables(SegmentRow.__table__, LockRow.__table__, ExportRow.__table__)
)


@migration("recording", 2, "evidence lock release requests (two-person release)")
def _release_requests(conn: Connection) -> None:
    have = {c["name"] for c in inspect(conn).get_columns(LockRow.__tablename__)}
    for name in ("release_requested_by", "release_requested_at", "release_reason"):
        if name not in have:
            column = LockRow.__table__.c[name]
            conn.execute(sql_text(f"ALTER TABLE {LockRow.__tablename__} ADD COLUMN {name} "
                                  f"{column.type.compile(conn.dialect)}"))


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return utc(value).isoformat().replace("+00:00", "Z") if value is not None else None


def parse_time(text: str) -> datetime:
    """ISO 8601 (``Z`` or offset; naive means UTC) or Unix seconds."""
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
