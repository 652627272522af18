"""Evidence locks (R10, WX 29 ¶2): a locked camera range outlives retention until released.
Placing a lock takes one permitted person; releasing it takes two (two-person rule): one requests
the release with a reason, a second, different person confirms it. Every step asks the gate for
MANAGE on the recording and is audited; the lock holds until the confirmation."""

from __future__ import annotations

from datetime import datetime
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select

from gateway.policy import Action, Resource, Subject, subject_access

from .index import LockRow, iso, now, utc

if TYPE_CHECKING:
    from gateway.app import Gateway


REASON_MAX = 500
SELF_CONFIRM = "two-person rule: the release must be confirmed by someone other than its requester"


class Denied(PermissionError):
    """The policy gate (or the two-person rule) said no; the message says why."""


class LockConflict(RuntimeError):
    """The lock is not in a state that allows this step (already released, release pending…)."""


def recording_resource(gw: Gateway, channel_id: str) -> Resource:
    """A camera's recordings carry the camera's unit, district and security level."""
    cam = gw.camera_resource(channel_id)
    return Resource("recording", channel_id, cam.unit, cam.district, cam.security_level, cam.attrs)


async def authorize_manage(gw: Gateway, subject: Subject, channel_id: str, what: str) -> None:
    resource = recording_resource(gw, channel_id)
    decision = await gw.policy.authorize(subject_access(subject, Action.MANAGE, resource, "http",
                                                        detail={"operation": what}))
    if not decision:
        raise Denied(decision.reason)


def lock_json(row: LockRow) -> dict:
    return {"id": row.id, "camera": row.camera, "start": iso(row.start), "end": iso(row.end), "reason": row.reason,
            "case_id": row.case_id, "created_by": row.created_by, "created_at": iso(row.created_at),
            "released_by": row.released_by, "released_at": iso(row.released_at), "active": row.released_at is None,
            "release": None if row.release_requested_by is None else {
                "requested_by": row.release_requested_by, "requested_at": iso(row.release_requested_at),
                "reason": row.release_reason, "confirmed_by": row.released_by}}


def release_reason(reason: object) -> str:
    """A release's reason: required, one line of at most :data:`REASON_MAX` characters."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValueError("reason: releasing an evidence lock needs a reason")
    if len(text) > REASON_MAX:
        raise ValueError(f"reason: at most {REASON_MAX} characters")
    if any(ord(c) < 32 for c in text):
        raise ValueError("reason: control characters are not allowed")
    return text


class Locks:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def lock(self, subject: Subject, channel_id: str, start: datetime, end: datetime, reason: str,
                   case_id: str | None = None) -> LockRow:
        if not reason.strip():
            raise ValueError("reason: an evidence lock needs a reason")
        if end <= start:
            raise ValueError("end: must be after start")
        await authorize_manage(self.gw, subject, channel_id, "recording.lock")
        row = LockRow(id=uuid.uuid4().hex, camera=channel_id, start=start, end=end, reason=reason.strip(),
                      case_id=case_id, created_by=subject.id, created_at=now())
        async with self.gw.db.session() as s:
            s.add(row)
        await self.gw.audit.record(actor=subject.id, action="recording.lock", resource=f"recording:{channel_id}",
                                   decision="allow", reason=row.reason, address=subject.address, request_id=row.id,
                                   extra={"start": iso(start), "end": iso(end), "case_id": case_id})
        return row

    async def request_release(self, subject: Subject, lock_id: str, reason: object) -> LockRow:
        """First person: ask for the release. The lock stays active until someone else confirms."""
        text = release_reason(reason)
        row = await self._get(lock_id)
        await authorize_manage(self.gw, subject, row.camera, "recording.unlock.request")
        async with self.gw.db.session() as s:
            row = await s.get(LockRow, lock_id, with_for_update=True)
            if row.released_at is not None:
                raise LockConflict(f"lock {lock_id} was already released")
            if row.release_requested_by is not None:
                raise LockConflict(f"lock {lock_id} already has a release awaiting a second person's confirmation")
            row.release_requested_by, row.release_requested_at, row.release_reason = subject.id, now(), text
        await self.gw.audit.record(actor=subject.id, action="recording.unlock.request",
                                   resource=f"recording:{row.camera}", decision="allow", reason=text,
                                   address=subject.address, request_id=lock_id)
        return row

    async def confirm_release(self, subject: Subject, lock_id: str) -> LockRow:
        """Second person: confirm a requested release; the requester cannot confirm their own."""
        row = await self._get(lock_id)
        await authorize_manage(self.gw, subject, row.camera, "recording.unlock")
        async with self.gw.db.session() as s:
            row = await s.get(LockRow, lock_id, with_for_update=True)
            if row.released_at is not None:
                raise LockConflict(f"lock {lock_id} was already released")
            if row.release_requested_by is None:
                raise LockConflict(f"lock {lock_id} has no release request to confirm; request one first")
            own = row.release_requested_by == subject.id
            if not own:
                row.released_by, row.released_at = subject.id, now()
        decision, reason = ("deny", SELF_CONFIRM) if own else ("allow", row.release_reason)
        await self.gw.audit.record(actor=subject.id, action="recording.unlock", resource=f"recording:{row.camera}",
                                   decision=decision, reason=reason, address=subject.address, request_id=lock_id,
                                   extra={"requested_by": row.release_requested_by})
        if own:
            raise Denied(SELF_CONFIRM)
        return row

    async def _get(self, lock_id: str) -> LockRow:
        async with self.gw.db.session() as s:
            row = await s.get(LockRow, lock_id)
        if row is None:
            raise LookupError(f"no evidence lock {lock_id!r}")
        return row

    async def list(self, channel_id: str | None = None, active_only: bool = False) -> list[LockRow]:
        query = select(LockRow).order_by(LockRow.created_at)
        if channel_id is not None:
            query = query.where(LockRow.camera == channel_id)
        if active_only:
            query = query.where(LockRow.released_at.is_(None))
        async with self.gw.db.session() as s:
            return list(await s.scalars(query))

    async def holding(self, channel_id: str, start: datetime, end: datetime) -> list[LockRow]:
        """Active locks that overlap [start, end)."""
        return [r for r in await self.list(channel_id, active_only=True) if utc(r.start) < end and start < utc(r.end)]
