"""Ending access before its time (R11, R13): a grant revoked, a login's sessions ended.

A revoked grant stops deciding at once (the gate forgets it, the database marks it), every video
session opened under it is closed with the reason, and for a relatives' grant the relative's logins
end too. Who may: a police chief for any grant, the officer who granted it (relatives) or approved
it (retrievals). Every step is audited, refusals included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import select

from gateway.http import HttpError, json_object, json_response
from gateway.http.server import gateway_of, subject_of

from .grants import GrantRow, RetrievalRow
from .model import Subject

if TYPE_CHECKING:
    from gateway.app import Gateway

MAX_REASON = 500
SESSION_ADMINS = {"police_chief", "system_admin"}  # any login's sessions
RELATIVE_SESSION_ADMINS = {"police_officer", "police_chief"}  # relatives' sessions


@dataclass(frozen=True, slots=True)
class Revoked:
    grant_id: str
    video_sessions: int
    logins: int


def _reason(body: dict) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON or "\n" in reason:
        raise HttpError(400, "bad_request", f"reason: one line of 1-{MAX_REASON} characters is required", field="reason")
    return reason.strip()


async def _deny(gw: Gateway, subject: Subject, action: str, resource: str, status: int, message: str) -> HttpError:
    await gw.audit.record(actor=subject.id, action=action, resource=resource, decision="deny", reason=message,
                          address=subject.address)
    return HttpError(status, "forbidden" if status == 403 else "refused", message)


async def revoke_grant(gw: Gateway, subject: Subject, grant_id: str, reason: str) -> Revoked:
    resource = f"grant:{grant_id}"
    async with gw.db.session() as s:
        row = await s.get(GrantRow, grant_id)
        if row is None:
            raise HttpError(404, "not_found", f"no grant {grant_id!r}")
        granted_by = row.source
        if row.kind == "retrieval":
            request = await s.scalar(select(RetrievalRow).where(RetrievalRow.id == row.source))
            granted_by = request.decided_by if request is not None else None
        if "police_chief" not in subject.roles and subject.id != granted_by:
            raise await _deny(gw, subject, "grant.revoke", resource, 403,
                              "only a police chief or the officer who granted it revokes a grant")
        if row.revoked:
            raise await _deny(gw, subject, "grant.revoke", resource, 409, f"grant {grant_id} is already revoked")
        row.revoked = True
    gw.policy.grants.pop(grant_id, None)  # type: ignore[attr-defined]
    closed = gw.sessions.revoke(grant_id=grant_id, reason=f"grant {grant_id} was revoked: {reason}")
    logins = await gw.identity.revoke_sessions(f"relative:{grant_id}") if row.kind == "relative" else 0
    await gw.audit.record(actor=subject.id, action="grant.revoke", resource=resource, decision="allow", reason=reason,
                          address=subject.address, extra={"video_sessions": closed, "logins": logins})
    return Revoked(grant_id, closed, logins)


def _may_manage_sessions(subject: Subject, subject_id: str) -> bool:
    return bool(SESSION_ADMINS & subject.roles) or (
        subject_id.startswith("relative:") and bool(RELATIVE_SESSION_ADMINS & subject.roles))


# -- HTTP ------------------------------------------------------------------------------------
async def grant_revoke(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    reason = _reason(await json_object(request))
    done = await revoke_grant(gw, subject_of(request), request.match_info["id"], reason)
    return json_response({"grant_id": done.grant_id, "revoked": True, "video_sessions_closed": done.video_sessions,
                          "logins_ended": done.logins})


async def list_sessions(request: web.Request) -> web.Response:
    """The logins of one subject (``user:<name>`` or ``relative:<grant id>``) and their open video."""
    gw, subject = gateway_of(request), subject_of(request)
    target = request.query.get("subject", "")
    if not target:
        raise HttpError(400, "bad_query", "subject: required (user:<name> or relative:<grant id>)", field="subject")
    if not _may_manage_sessions(subject, target):
        raise await _deny(gw, subject, "session.list", f"subject:{target}", 403, "not allowed to see these sessions")
    logins = await gw.identity.sessions_of(target)
    video = [v for v in gw.sessions.open.values() if v.subject.id == target]
    return json_response({"subject": target,
                          "logins": [{"session": a.session, "created": a.created.isoformat(),
                                      "expires": a.expires.isoformat()} for a in logins],
                          "video": [{"id": v.id, "kind": v.kind, "camera": v.decision.camera,
                                     "started": v.started.isoformat()} for v in video]})


async def revoke_sessions(request: web.Request) -> web.Response:
    """End a subject's logins (all, or the one named) and close their video sessions now."""
    gw, subject = gateway_of(request), subject_of(request)
    body = await json_object(request)
    target, session, reason = body.get("subject"), body.get("session"), _reason(body)
    if not isinstance(target, str) or not target:
        raise HttpError(400, "bad_request", "subject: required (user:<name> or relative:<grant id>)", field="subject")
    if session is not None and not isinstance(session, str):
        raise HttpError(400, "bad_request", "session: expected a session id", field="session")
    if not _may_manage_sessions(subject, target):
        raise await _deny(gw, subject, "session.revoke", f"subject:{target}", 403, "not allowed to end these sessions")
    if session is not None and session not in {a.session for a in await gw.identity.sessions_of(target)}:
        raise HttpError(404, "not_found", f"{target} has no session {session!r}")
    logins = await gw.identity.revoke_sessions(session=session) if session else \
        await gw.identity.revoke_sessions(target)
    closed = gw.sessions.revoke(subject_session=session, reason=f"session ended by {subject.id}: {reason}") \
        if session else gw.sessions.revoke(subject_id=target, reason=f"sessions ended by {subject.id}: {reason}")
    await gw.audit.record(actor=subject.id, action="session.revoke", resource=f"subject:{target}", decision="allow",
                          reason=reason, address=subject.address,
                          extra={"session": session, "logins": logins, "video_sessions": closed})
    return json_response({"subject": target, "logins_ended": logins, "video_sessions_closed": closed})


def add_routes(gw: Gateway) -> None:
    obj = {"type": "object"}
    r = gw.api.route
    r("POST", "/api/grants/{id}/revoke", grant_revoke, summary="Revoke a grant; its sessions close now (R11, R13)",
      tag="grants", body=obj, response=obj)
    r("GET", "/api/sessions", list_sessions, summary="A subject's logins and open video sessions", tag="identity",
      response=obj, query={"subject": {"type": "string"}})
    r("POST", "/api/sessions/revoke", revoke_sessions, summary="End a subject's logins and video sessions",
      tag="identity", body=obj, response=obj)
