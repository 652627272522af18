"""Grants that extend access narrowly: approved retrievals (R11), relatives' viewing (R13),
declared emergencies (R12). Kept in the database and mirrored in memory for the gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage import Base
from gateway.storage.migrate import create_tables, migration

from .model import Action, TimeWindow

EMERGENCY_KINDS = ("public_order", "natural_disaster", "accident", "public_health")  # QD 23 ¶3
PURPOSES = ("judicial", "administrative_enforcement", "emergency")  # QD 23, WX 23


class GrantRow(Base):
    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "retrieval" | "relative"
    subjects: Mapped[list] = mapped_column(JSON)  # subject ids the grant is for
    cameras: Mapped[list] = mapped_column(JSON)
    actions: Mapped[list] = mapped_column(JSON)
    start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # footage range
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(40))  # request id or granting officer
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class EmergencyRow(Base):
    __tablename__ = "emergencies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    cameras: Mapped[list] = mapped_column(JSON)
    units: Mapped[list] = mapped_column(JSON)
    districts: Mapped[list] = mapped_column(JSON)
    justification: Mapped[str] = mapped_column(Text)
    declared_by: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    review_notes: Mapped[str | None] = mapped_column(Text, nullable=True)


class RetrievalRow(Base):
    __tablename__ = "retrieval_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    requester: Mapped[str] = mapped_column(String(200))
    requester_side: Mapped[str] = mapped_column(String(16))  # "police" | "department"
    second_officer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    purpose: Mapped[str] = mapped_column(String(32))
    legal_basis: Mapped[str] = mapped_column(Text)
    case_number: Mapped[str] = mapped_column(String(100))
    document_name: Mapped[str] = mapped_column(String(200))
    document_sha256: Mapped[str] = mapped_column(String(64))
    cameras: Mapped[list] = mapped_column(JSON)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(8))  # "view" | "copy"
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    grant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


migration("policy", 1, "grants, emergencies, retrieval requests")(
    create_tables(GrantRow.__table__, EmergencyRow.__table__, RetrievalRow.__table__))


def _aware(when: datetime | None) -> datetime | None:
    return when if when is None or when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    kind: str
    subjects: frozenset[str]
    cameras: frozenset[str]
    actions: frozenset[Action]
    start: datetime | None
    end: datetime | None
    expires: datetime

    @classmethod
    def of(cls, row: GrantRow) -> Grant:
        return cls(row.id, row.kind, frozenset(row.subjects), frozenset(row.cameras),
                   frozenset(Action(a) for a in row.actions), _aware(row.start), _aware(row.end), _aware(row.expires))

    def covers(self, subject_id: str, camera: str, action: Action, window: TimeWindow | None, now: datetime) -> bool:
        """Recorded footage must lie inside the granted range; live video is footage of now, so it is
        covered only while now lies inside that range (a grant about past footage confers no live view)."""
        if subject_id not in self.subjects or camera not in self.cameras or action not in self.actions:
            return False
        if now >= self.expires:
            return False
        if window is not None:
            return window.within(self.start, self.end)
        return (self.start is None or self.start <= now) and (self.end is None or now <= self.end)


@dataclass(frozen=True, slots=True)
class Emergency:
    id: str
    kind: str
    cameras: frozenset[str]
    units: frozenset[str]
    districts: frozenset[str]
    expires: datetime
    justification: str = ""
    declared_by: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, row: EmergencyRow) -> Emergency:
        return cls(row.id, row.kind, frozenset(row.cameras), frozenset(row.units), frozenset(row.districts),
                   _aware(row.expires), row.justification, row.declared_by)

    def covers(self, camera: str, unit: str | None, district: str | None) -> bool:
        return camera in self.cameras or (unit in self.units) or (district in self.districts)
