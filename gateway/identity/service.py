"""Login with lock-out and TOTP, sessions, and the subjects the HTTP and gRPC edges use."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
import pyotp
from sqlalchemy import delete, select

from gateway.config import section
from gateway.policy import Subject
from gateway.storage import Database

from .models import PRIVILEGED, ROLES, ClientRow, SessionRow, UserRow


@section("identity")
@dataclass(slots=True)
class IdentityConfig:
    session_minutes: int = 480
    max_failures: int = 5
    lockout_minutes: int = 15
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    clients: list[str] = field(default_factory=list)  # machine clients: "CN=tier:clearance[:unit]"


class LoginError(Exception):
    """Refused login; the message never says which part was wrong."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Identity:
    def __init__(self, db: Database, cfg: IdentityConfig) -> None:
        self.db, self.cfg = db, cfg
        self.hasher = PasswordHasher(time_cost=cfg.argon2_time_cost, memory_cost=cfg.argon2_memory_kib)
        self._clients: dict[str, ClientRow] = {}
        self._sessions: dict[str, tuple[Subject, datetime]] = {}  # cache: token digest → subject

    async def load(self) -> None:
        async with self.db.session() as s:
            self._clients = {c.common_name: c for c in await s.scalars(select(ClientRow))}

    # -- users --------------------------------------------------------------------------
    async def add_user(self, username: str, password: str, roles: list[str], *, unit: str | None = None,
                       district: str | None = None, clearance: int = 1, tier: str = "sharing",
                       display_name: str = "") -> str | None:
        """Create a user; returns the TOTP secret when a privileged role requires one."""
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"roles: unknown role {sorted(unknown)[0]!r}")
        if len(password) < 10:
            raise ValueError("password: at least 10 characters")
        secret = pyotp.random_base32() if PRIVILEGED & set(roles) else None
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        async with self.db.session() as s:
            if await s.get(UserRow, username) is not None:
                raise ValueError(f"username: {username!r} exists")
            s.add(UserRow(username=username, display_name=display_name or username,
                          password_hash=password_hash, roles=roles, unit=unit, district=district,
                          clearance=clearance, tier=tier, totp_secret=secret, failed_logins=0))
        return secret

    async def add_client(self, common_name: str, tier: str, clearance: int, unit: str | None = None) -> None:
        async with self.db.session() as s:
            row = ClientRow(common_name=common_name, tier=tier, clearance=clearance, unit=unit)
            await s.merge(row)
        self._clients[common_name] = row

    def subject_for(self, user: UserRow, session: str | None = None, address: str | None = None) -> Subject:
        return Subject(id=f"user:{user.username}", kind="user", name=user.display_name, roles=frozenset(user.roles),
                       unit=user.unit, district=user.district, clearance=user.clearance, tier=user.tier,
                       session=session, address=address)

    # -- login ------------------------------------------------------------------------
    async def login(self, username: str, password: str, totp: str | None, address: str | None = None) -> tuple[str, datetime, Subject]:
        now = datetime.now(UTC)
        refusal = ""
        async with self.db.session() as s:  # failures are committed too: raising inside would roll them back
            user = await s.get(UserRow, username, with_for_update=True)
            if user is None:
                await asyncio.to_thread(self.hasher.hash, password)  # same cost whether or not the user exists
                raise LoginError("wrong username, password or code")
            if user.locked_until and _aware(user.locked_until) > now:
                raise LoginError("account locked after repeated failures; try again later")
            ok = await asyncio.to_thread(self._password_ok, user, password)  # argon2 is CPU-heavy
            needs_totp = bool(PRIVILEGED & set(user.roles))
            if ok and needs_totp:
                ok = bool(totp) and user.totp_secret is not None and pyotp.TOTP(user.totp_secret).verify(totp, valid_window=1)
            if not ok:
                user.failed_logins += 1
                if user.failed_logins >= self.cfg.max_failures:
                    user.locked_until = now + timedelta(minutes=self.cfg.lockout_minutes)
                    user.failed_logins = 0
                refusal = "wrong username, password or code" + (" (a TOTP code is required)" if needs_totp and not totp else "")
            else:
                user.failed_logins = 0
                user.locked_until = None
                token = secrets.token_urlsafe(32)
                expires = now + timedelta(minutes=self.cfg.session_minutes)
                s.add(SessionRow(token_hash=_digest(token), username=username, created=now, expires=expires))
                subject = self.subject_for(user, _digest(token)[:16], address)
        if refusal:
            raise LoginError(refusal)
        return token, expires, subject

    def _password_ok(self, user: UserRow, password: str) -> bool:
        try:
            return self.hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def logout(self, token: str) -> None:
        digest = _digest(token)
        self._sessions.pop(digest, None)
        async with self.db.session() as s:
            await s.execute(delete(SessionRow).where(SessionRow.token_hash == digest))

    async def issue_relative_session(self, name: str, grant_id: str, expires: datetime) -> str:
        """A view-only session for a relative (R13): no account, bound to one grant, expiring with it."""
        token = secrets.token_urlsafe(32)
        async with self.db.session() as s:
            s.add(SessionRow(token_hash=_digest(token), username=name, grant_id=grant_id,
                             created=datetime.now(UTC), expires=expires))
        return token

    # -- authenticators -------------------------------------------------------------------
    async def authenticate(self, token: str, request: Any) -> Subject | None:
        """HTTP/gRPC authenticator: a session token → its user's subject, until it expires."""
        digest = _digest(token)
        now = datetime.now(UTC)
        cached = self._sessions.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        address = getattr(request, "remote", None)
        async with self.db.session() as s:
            session = await s.get(SessionRow, digest)
            if session is None or _aware(session.expires) <= now:
                return None
            user = None if session.grant_id else await s.get(UserRow, session.username)
        if session.grant_id:
            subject = Subject(id=f"relative:{session.grant_id}", kind="user", name=session.username,
                              roles=frozenset({"relative"}), session=digest[:16], address=address)
        elif user is None:
            return None
        else:
            subject = self.subject_for(user, digest[:16], address)
        self._sessions[digest] = (subject, _aware(session.expires))
        return subject

    def certificate_subject(self, common_name: str) -> Subject | None:
        client = self._clients.get(common_name)
        if client is None:
            return None
        return Subject(id=f"cert:{common_name}", kind="client", name=common_name, roles=frozenset({"platform"}),
                       unit=client.unit, clearance=client.clearance, tier=client.tier)
