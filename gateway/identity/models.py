"""Users, sessions and registered machine clients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage import Base
from gateway.storage.migrate import create_tables, migration

ROLES = {
    "department_admin": "manages its unit's systems and cameras",
    "wall_operator": "watches the video wall, PTZ",
    "police_officer": "views; files retrieval requests; grants relatives' viewing",
    "police_chief": "approves police retrieval requests (city or district)",
    "emergency_commander": "declares emergencies (R12)",
    "emergency_agency_user": "works under a declared emergency",
    "auditor": "reads the audit trail; cannot change policy",
    "system_admin": "manages users and configuration; cannot read the audit trail",
    "relative": "views under a relatives' grant only (R13)",
    "platform": "a machine client (police image platform, emergency-command system)",
}
PRIVILEGED = {"system_admin", "auditor", "police_chief", "emergency_commander", "department_admin"}


class UserRow(Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSON, default=list)
    unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    district: Mapped[str | None] = mapped_column(String(64), nullable=True)
    clearance: Mapped[int] = mapped_column(Integer, default=1)
    tier: Mapped[str] = mapped_column(String(16), default="sharing")
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the last TOTP time-step a login used: a code is accepted once, and no older one after it
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SessionRow(Base):
    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    grant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # relatives' sessions
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClientRow(Base):
    """A machine client known by its certificate's common name (mTLS)."""

    __tablename__ = "machine_clients"

    common_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16))  # "police" | "emergency" | "sharing"
    clearance: Mapped[int] = mapped_column(Integer, default=1)
    unit: Mapped[str | None] = mapped_column(String(64), nullable=True)


migration("identity", 1, "users, sessions, machine clients")(
    create_tables(UserRow.__table__, SessionRow.__table__, ClientRow.__table__))


@migration("identity", 2, "users.totp_last_step (a TOTP code is used once)")
def _totp_last_step(conn: Connection) -> None:
    if "totp_last_step" not in {c["name"] for c in inspect(conn).get_columns("users")}:
        conn.execute(text("ALTER TABLE users ADD COLUMN totp_last_step BIGINT"))
