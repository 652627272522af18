"""Login with lock-out and TOTP, sessions, and the subjects the HTTP and gRPC edges use."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import hmac
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
import pyotp
from sqlalchemy import and_, delete, or_, select, update

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
    """Refused login. Its text is the same for every cause, so a caller learns nothing about the
    account (not even that it exists or is locked); ``reason`` is the true cause, for the audit."""

    MESSAGE = "wrong username, password or code (privileged roles also need their TOTP code)"

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGE)
        self.reason = reason


CACHE_SECONDS = 30  # a session revoked on another node stops working here within this time
_SESSION_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A live session as an administrator sees it; never its token."""

    session: str  # the id subjects and audit records carry: the token digest's first 16 hex digits
    subject_id: str
    created: datetime
    expires: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _owned_by(subject_id: str) -> Any:
    """The sessions of ``user:<name>`` (own login) or ``relative:<grant id>``, as a SQL condition."""
    kind, _, name = subject_id.partition(":")
    if kind == "user" and name:
        return and_(SessionRow.username == name, SessionRow.grant_id.is_(None))
    if kind == "relative" and name:
        return SessionRow.grant_id == name
    raise ValueError(f"subject: expected user:<name> or relative:<grant id>, not {subject_id[:80]!r}")


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Identity:
    def __init__(self, db: Database, cfg: IdentityConfig) -> None:
        self.db, self.cfg = db, cfg
        self.hasher = PasswordHasher(time_cost=cfg.argon2_time_cost, memory_cost=cfg.argon2_memory_kib)
        self._clients: dict[str, ClientRow] = {}
        self._sessions: dict[str, tuple[Subject, datetime]] = {}  # cache: token digest → (subject, until)

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
    async def login(self, username: str, password: str, totp: str | None,
                    address: str | None = None) -> tuple[str, datetime, Subject]:
        """A new session, or LoginError: the same message whatever failed (unknown user, wrong
        password or code, a reused code, a locked account); ``LoginError.reason`` says which."""
        now = datetime.now(UTC)
        reason = ""
        async with self.db.session() as s:  # failures are committed too: raising inside would roll them back
            user = await s.get(UserRow, username, with_for_update=True)
            if user is None:
                await asyncio.to_thread(self.hasher.hash, password)  # same cost whether or not the user exists
                raise LoginError("unknown user")
            ok = await asyncio.to_thread(self._password_ok, user, password)  # argon2 is CPU-heavy
            if user.locked_until and _aware(user.locked_until) > now:
                raise LoginError("account locked" + ("" if ok else " (and a wrong password)"))
            needs_totp = bool(PRIVILEGED & set(user.roles))
            if not ok:
                reason = "wrong password"
            elif needs_totp:
                reason = await self._use_totp(s, user, totp, now)
            if reason:
                user.failed_logins += 1
                if user.failed_logins >= self.cfg.max_failures:
                    user.locked_until = now + timedelta(minutes=self.cfg.lockout_minutes)
                    user.failed_logins = 0
                    reason += f"; locked for {self.cfg.lockout_minutes} min"
            else:
                user.failed_logins = 0
                user.locked_until = None
                token = secrets.token_urlsafe(32)
                expires = now + timedelta(minutes=self.cfg.session_minutes)
                s.add(SessionRow(token_hash=_digest(token), username=username, created=now, expires=expires))
                subject = self.subject_for(user, _digest(token)[:16], address)
        if reason:
            raise LoginError(reason)
        return token, expires, subject

    async def _use_totp(self, s: Any, user: UserRow, code: str | None, now: datetime) -> str:
        """Accept ``code`` once: its time-step must be newer than the last one this user logged in
        with, claimed by a conditional update so two concurrent logins cannot both win. Returns
        the refusal reason, or "" when accepted."""
        if not code or user.totp_secret is None:
            return "no TOTP code"
        totp = pyotp.TOTP(user.totp_secret)
        current = totp.timecode(now)
        given = code.strip().encode()  # bytes: compare_digest refuses non-ASCII str (IME full-width digits)
        matched = [step for step in (current - 1, current, current + 1)
                   if hmac.compare_digest(totp.generate_otp(step).encode(), given)]
        if not matched:
            return "wrong TOTP code"
        step = matched[-1]
        claimed = await s.execute(
            update(UserRow).where(UserRow.username == user.username,
                                  or_(UserRow.totp_last_step.is_(None), UserRow.totp_last_step < step))
            .values(totp_last_step=step).execution_options(synchronize_session=False))
        return "" if claimed.rowcount == 1 else "TOTP code already used"

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

    async def sessions_of(self, subject_id: str) -> list[ActiveSession]:
        """The live sessions of ``user:<name>`` or ``relative:<grant id>``, oldest first."""
        now = datetime.now(UTC)
        async with self.db.session() as s:
            rows = list(await s.scalars(select(SessionRow).where(_owned_by(subject_id))))
        return sorted((ActiveSession(r.token_hash[:16], subject_id, _aware(r.created), _aware(r.expires))
                       for r in rows if _aware(r.expires) > now), key=lambda a: a.created)

    async def revoke_sessions(self, subject_id: str | None = None, *, session: str | None = None) -> int:
        """End every session of ``subject_id`` (``user:<name>``, ``relative:<grant id>``) or the one
        session whose id is ``session``; returns how many ended. This node forgets them at once,
        other nodes sharing the database within ``CACHE_SECONDS``."""
        if (subject_id is None) == (session is None):
            raise ValueError("revoke_sessions: give either a subject id or a session id")
        if session is not None and not _SESSION_ID.fullmatch(session):
            raise ValueError("session: expected the 16 hex digits a subject's session id has")
        where = _owned_by(subject_id) if subject_id is not None else SessionRow.token_hash.startswith(session)
        async with self.db.session() as s:
            digests = list(await s.scalars(select(SessionRow.token_hash).where(where)))
            if digests:
                await s.execute(delete(SessionRow).where(SessionRow.token_hash.in_(digests)))
        for digest in digests:
            self._sessions.pop(digest, None)
        return len(digests)

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
        self._sessions[digest] = (subject, min(_aware(session.expires), now + timedelta(seconds=CACHE_SECONDS)))
        return subject

    def certificate_subject(self, common_name: str) -> Subject | None:
        client = self._clients.get(common_name)
        if client is None:
            return None
        return Subject(id=f"cert:{common_name}", kind="client", name=common_name, roles=frozenset({"platform"}),
                       unit=client.unit, clearance=client.clearance, tier=client.tier)
