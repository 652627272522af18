"""The workflows that create grants: retrieval requests with two officers and approval (R11),
emergency declarations that expire by themselves (R12), relatives' view-only grants (R13).
Each step is written to the audit trail."""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
from typing import TYPE_CHECKING, Any, ClassVar
import uuid

from sqlalchemy import select

from gateway.bus import Event

from .grants import EMERGENCY_KINDS, PURPOSES, Emergency, EmergencyRow, Grant, GrantRow, RetrievalRow
from .model import Action, Subject

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.identity.service import Identity

    from .gate import TieredGate

POLICE = {"police_officer", "police_chief"}
MAX_GRANT_HOURS = 72
MAX_EMERGENCY_HOURS = 72


@dataclass
class EmergencyDeclared(Event):
    topic: ClassVar[str] = "emergency.declared"
    emergency_id: str = ""
    kind: str = ""
    scope_cameras: list[str] = field(default_factory=list)
    scope_units: list[str] = field(default_factory=list)
    scope_districts: list[str] = field(default_factory=list)
    expires_at: float = 0.0
    justification: str = ""
    declared_by: str = ""


@dataclass
class EmergencyEnded(Event):
    topic: ClassVar[str] = "emergency.ended"
    emergency_id: str = ""
    reason: str = ""


class Refused(Exception):
    """A workflow step refused: HTTP status, the field at fault (if any), and the reason."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


def _need(body: dict[str, Any], name: str, choices: tuple[str, ...] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, f"{name}: required", name)
    if choices and value not in choices:
        raise Refused(400, f"{name}: expected one of {', '.join(choices)}", name)
    return value.strip()


def _list(body: dict[str, Any], name: str, required: bool = True) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or (required and not value):
        raise Refused(400, f"{name}: expected a non-empty list of ids" if required else f"{name}: expected a list of ids", name)
    return value


def _time(body: dict[str, Any], name: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(body[name]))
    except (KeyError, ValueError):
        raise Refused(400, f"{name}: expected an ISO 8601 time", name) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _hours(body: dict[str, Any], name: str, default: float, limit: float) -> float:
    value = body.get(name, default)
    if not isinstance(value, (int, float)) or not 0 < value <= limit:
        raise Refused(400, f"{name}: expected 0 < hours ≤ {limit:g}", name)
    return float(value)


class Workflows:
    def __init__(self, gw: Gateway, gate: TieredGate, identity: Identity) -> None:
        self.gw, self.gate, self.identity = gw, gate, identity
        self._expiry: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        now = datetime.now(UTC)
        async with self.gw.db.session() as s:
            for row in await s.scalars(select(GrantRow).where(GrantRow.revoked.is_(False))):
                grant = Grant.of(row)
                if grant.expires > now:
                    self.gate.grants[grant.id] = grant
            for row in await s.scalars(select(EmergencyRow).where(EmergencyRow.ended_at.is_(None))):
                self.gate.emergencies[row.id] = Emergency.of(row)
        self._expiry = asyncio.get_running_loop().create_task(self._expire_forever(), name="emergency-expiry")

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)

    async def _audit(self, subject: Subject, action: str, resource: str, reason: str, **extra: Any) -> None:
        await self.gw.audit.record(actor=subject.id, action=action, resource=resource, decision="allow",
                                   reason=reason, address=subject.address, extra=extra)

    async def _refuse(self, subject: Subject, action: str, resource: str, exc: Refused) -> Refused:
        await self.gw.audit.record(actor=subject.id, action=action, resource=resource, decision="deny",
                                   reason=str(exc), address=subject.address)
        return exc

    # -- retrieval requests (R11) ---------------------------------------------------------
    async def create_request(self, subject: Subject, body: dict[str, Any]) -> RetrievalRow:
        try:
            if not (POLICE | {"department_admin"}) & subject.roles:
                raise Refused(403, "only police officers and department staff file retrieval requests")
            purpose = _need(body, "purpose", PURPOSES)
            basis = _need(body, "legal_basis")
            case = _need(body, "case_number")
            doc_name = _need(body, "approval_document_name")
            try:
                document = base64.b64decode(_need(body, "approval_document"), validate=True)
            except binascii.Error:
                raise Refused(400, "approval_document: expected base64 content", "approval_document") from None
            cameras = _list(body, "cameras")
            start, end = _time(body, "start"), _time(body, "end")
            if end <= start:
                raise Refused(400, "end: must be after start", "end")
            action = _need(body, "action", ("view", "copy"))
        except Refused as exc:
            raise await self._refuse(subject, "retrieval.create", "retrieval:new", exc) from None
        row = RetrievalRow(id=uuid.uuid4().hex[:16], status="awaiting_second_officer", requester=subject.id,
                           requester_side="police" if POLICE & subject.roles else "department", purpose=purpose,
                           legal_basis=basis, case_number=case, document_name=doc_name,
                           document_sha256=hashlib.sha256(document).hexdigest(), cameras=cameras, start=start,
                           end=end, action=action, created=datetime.now(UTC))
        async with self.gw.db.session() as s:
            s.add(row)
        await self._audit(subject, "retrieval.create", f"retrieval:{row.id}", "request filed",
                          document_sha256=row.document_sha256, cameras=cameras, access=action)
        return row

    async def _load(self, request_id: str) -> RetrievalRow:
        async with self.gw.db.session() as s:
            row = await s.get(RetrievalRow, request_id)
        if row is None:
            raise Refused(404, f"no retrieval request {request_id!r}")
        return row

    async def _step(self, subject: Subject, request_id: str, step: str, check, change) -> RetrievalRow:  # noqa: ANN001
        resource = f"retrieval:{request_id}"
        try:
            row = await self._load(request_id)
            check(row)
        except Refused as exc:
            raise await self._refuse(subject, f"retrieval.{step}", resource, exc) from None
        async with self.gw.db.session() as s:
            row = await s.get(RetrievalRow, request_id, with_for_update=True)
            check(row)  # again, inside the transaction
            reason = change(row)
        await self._audit(subject, f"retrieval.{step}", resource, reason)
        return row

    async def confirm(self, subject: Subject, request_id: str) -> RetrievalRow:
        """The second officer confirms with their own credentials (QD 23: at least two staff)."""

        def check(row: RetrievalRow) -> None:
            if row.status != "awaiting_second_officer":
                raise Refused(409, f"the request is {row.status}, not awaiting a second officer")
            if subject.id == row.requester:
                raise Refused(409, "two distinct officers are required: the requester cannot confirm (QD 23, WX 23)")
            side_roles = POLICE if row.requester_side == "police" else POLICE | {"department_admin"}
            if not side_roles & subject.roles:
                raise Refused(403, "the second officer must be police or department staff")

        def change(row: RetrievalRow) -> str:
            row.second_officer, row.status = subject.id, "awaiting_approval"
            return "second officer confirmed"

        return await self._step(subject, request_id, "confirm", check, change)

    async def approve(self, subject: Subject, request_id: str, body: dict[str, Any]) -> RetrievalRow:
        hours = _hours(body, "hours", 24, MAX_GRANT_HOURS)
        grant_id = "g-" + uuid.uuid4().hex[:14]

        def check(row: RetrievalRow) -> None:
            if row.status != "awaiting_approval":
                raise Refused(409, f"the request is {row.status}; it needs a second officer before approval")
            if row.requester_side == "police" and "police_chief" not in subject.roles:
                raise Refused(403, "police requests need the approval of a city or district police chief (QD 24)")
            if row.requester_side == "department" and not POLICE & subject.roles:
                raise Refused(403, "department requests are coordinated with police: a police approver is needed (QD 23)")
            if subject.id in (row.requester, row.second_officer):
                raise Refused(409, "an officer on the request cannot approve it")

        def change(row: RetrievalRow) -> str:
            row.status, row.decided_by, row.grant_id = "approved", subject.id, grant_id
            return f"approved; grant {grant_id} for {hours:g} h"

        row = await self._step(subject, request_id, "approve", check, change)
        actions = [Action.VIEW_PLAYBACK, Action.VIEW_LIVE] + ([Action.EXPORT] if row.action == "copy" else [])
        grant = GrantRow(id=grant_id, kind="retrieval", subjects=[row.requester, row.second_officer],
                         cameras=row.cameras, actions=[a.value for a in actions], start=row.start, end=row.end,
                         expires=datetime.now(UTC) + timedelta(hours=hours), source=row.id, revoked=False)
        async with self.gw.db.session() as s:
            s.add(grant)
        self.gate.grants[grant_id] = Grant.of(grant)
        return row

    async def refuse(self, subject: Subject, request_id: str, body: dict[str, Any]) -> RetrievalRow:
        """A system's manager (or an approver) refuses a request that does not comply (QD 23 ¶2)."""
        reason = _need(body, "reason")

        def check(row: RetrievalRow) -> None:
            if row.status in ("approved", "refused"):
                raise Refused(409, f"the request is already {row.status}")
            units = {self.gw.camera_resource(c).unit for c in row.cameras}
            manager = "department_admin" in subject.roles and subject.unit in units
            if not (manager or "police_chief" in subject.roles):
                raise Refused(403, "only the managing department of these cameras or a police chief can refuse")

        def change(row: RetrievalRow) -> str:
            row.status, row.decided_by, row.reason = "refused", subject.id, reason
            return f"refused: {reason}"

        return await self._step(subject, request_id, "refuse", check, change)

    # -- relatives (R13) -------------------------------------------------------------------
    async def grant_relative(self, subject: Subject, body: dict[str, Any]) -> tuple[GrantRow, str]:
        try:
            if "police_officer" not in subject.roles and "police_chief" not in subject.roles:
                raise Refused(403, "only police officers grant relatives' viewing (WX 25)")
            name = _need(body, "relative_name")
            _need(body, "missing_person", ("elderly", "child", "cognitive_impairment"))
            case = _need(body, "case_number")
            cameras = _list(body, "cameras")
            start, end = _time(body, "start"), _time(body, "end")
            hours = _hours(body, "hours", 4, 24)
        except Refused as exc:
            raise await self._refuse(subject, "relative.grant", "grant:new", exc) from None
        expires = datetime.now(UTC) + timedelta(hours=hours)
        row = GrantRow(id="r-" + uuid.uuid4().hex[:14], kind="relative", subjects=[], cameras=cameras,
                       actions=[Action.VIEW_LIVE.value, Action.VIEW_PLAYBACK.value], start=start, end=end,
                       expires=expires, source=subject.id, revoked=False)
        row.subjects = [f"relative:{row.id}"]
        async with self.gw.db.session() as s:
            s.add(row)
        self.gate.grants[row.id] = Grant.of(row)
        token = await self.identity.issue_relative_session(name, row.id, expires)
        await self._audit(subject, "relative.grant", f"grant:{row.id}", f"view-only grant, case {case}", cameras=cameras)
        return row, token

    # -- emergencies (R12) ------------------------------------------------------------------
    async def declare(self, subject: Subject, body: dict[str, Any]) -> EmergencyRow:
        try:
            if "emergency_commander" not in subject.roles:
                raise Refused(403, "only an emergency commander declares an emergency (R12)")
            kind = _need(body, "kind", EMERGENCY_KINDS)
            justification = _need(body, "justification")
            cameras, units = _list(body, "cameras", False), _list(body, "units", False)
            districts = _list(body, "districts", False)
            if not (cameras or units or districts):
                raise Refused(400, "scope: name cameras, units or districts", "cameras")
            hours = _hours(body, "hours", 6, MAX_EMERGENCY_HOURS)
        except Refused as exc:
            raise await self._refuse(subject, "emergency.declare", "emergency:new", exc) from None
        now = datetime.now(UTC)
        row = EmergencyRow(id="e-" + uuid.uuid4().hex[:14], kind=kind, cameras=cameras, units=units,
                           districts=districts, justification=justification, declared_by=subject.id,
                           declared_at=now, expires=now + timedelta(hours=hours))
        async with self.gw.db.session() as s:
            s.add(row)
        self.gate.emergencies[row.id] = Emergency.of(row)
        await self._audit(subject, "emergency.declare", f"emergency:{row.id}", justification, kind=kind,
                          cameras=cameras, units=units, districts=districts)
        self.gw.bus.publish(EmergencyDeclared(emergency_id=row.id, kind=kind, scope_cameras=cameras, scope_units=units,
                                              scope_districts=districts, expires_at=row.expires.timestamp(),
                                              justification=justification, declared_by=subject.name or subject.id))
        self._changed.set()
        return row

    async def renew(self, subject: Subject, emergency_id: str, body: dict[str, Any]) -> Emergency:
        if "emergency_commander" not in subject.roles:
            raise await self._refuse(subject, "emergency.renew", f"emergency:{emergency_id}",
                                     Refused(403, "only an emergency commander renews an emergency"))
        hours = _hours(body, "hours", 6, MAX_EMERGENCY_HOURS)
        em = self.gate.emergencies.get(emergency_id)
        if em is None:
            raise Refused(404, f"no active emergency {emergency_id!r}")
        expires = datetime.now(UTC) + timedelta(hours=hours)
        async with self.gw.db.session() as s:
            (await s.get(EmergencyRow, emergency_id)).expires = expires
        self.gate.emergencies[emergency_id] = Emergency(**{**{f: getattr(em, f) for f in em.__dataclass_fields__},
                                                           "expires": expires})
        await self._audit(subject, "emergency.renew", f"emergency:{emergency_id}", f"renewed for {hours:g} h")
        self._changed.set()
        return self.gate.emergencies[emergency_id]

    async def end(self, emergency_id: str, reason: str, subject: Subject | None = None) -> None:
        if self.gate.emergencies.pop(emergency_id, None) is None:
            raise Refused(404, f"no active emergency {emergency_id!r}")
        async with self.gw.db.session() as s:
            row = await s.get(EmergencyRow, emergency_id)
            row.ended_at, row.end_reason = datetime.now(UTC), reason
        closed = self.gw.sessions.revoke(grant_id=emergency_id, reason=f"emergency {emergency_id} ended: {reason}")
        await self.gw.audit.record(actor=subject.id if subject else "system", action="emergency.end",
                                   resource=f"emergency:{emergency_id}", decision="allow", reason=reason,
                                   extra={"video_sessions": closed})
        self.gw.bus.publish(EmergencyEnded(emergency_id=emergency_id, reason=reason))

    async def _expire_forever(self) -> None:
        while True:
            now = datetime.now(UTC)
            for em in [e for e in self.gate.emergencies.values() if e.expires <= now]:
                await self.end(em.id, "expired")
            upcoming = [e.expires for e in self.gate.emergencies.values()]
            wait = min(((t - now).total_seconds() for t in upcoming), default=3600)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.01, wait))
            except TimeoutError:
                pass

    async def review(self, subject: Subject, emergency_id: str, body: dict[str, Any]) -> EmergencyRow:
        """Sign off the after-action review of an ended emergency (R12: flagged for review)."""
        notes = _need(body, "notes")
        if not {"police_chief", "auditor"} & subject.roles:
            raise await self._refuse(subject, "emergency.review", f"emergency:{emergency_id}",
                                     Refused(403, "reviews are signed off by a police chief or an auditor"))
        async with self.gw.db.session() as s:
            row = await s.get(EmergencyRow, emergency_id, with_for_update=True)
            if row is None:
                raise Refused(404, f"no emergency {emergency_id!r}")
            if row.ended_at is None:
                raise Refused(409, "the emergency is still active")
            if row.reviewed_by:
                raise Refused(409, "already reviewed")
            if subject.id == row.declared_by:
                raise Refused(409, "the declaring commander cannot review their own emergency")
            row.reviewed_by, row.review_notes = subject.id, notes
        await self._audit(subject, "emergency.review", f"emergency:{emergency_id}", "review signed off")
        return row

    async def open_reviews(self) -> list[EmergencyRow]:
        async with self.gw.db.session() as s:
            return list(await s.scalars(select(EmergencyRow).where(EmergencyRow.reviewed_by.is_(None))
                                        .order_by(EmergencyRow.declared_at)))
