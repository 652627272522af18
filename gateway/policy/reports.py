"""Reports of suspicious information raised from a wall tile, delivered to the police (R16).

QD 19(1)(5) and WX 30(1)(9) oblige the watching unit to report what it sees to the police. A report
is an audit record (append-only, hash-chained: nobody can quietly withdraw it) plus a bus event that
carries only ids, so the note itself reaches nobody but the police roles that list reports.
"""

from __future__ import annotations

from dataclasses import dataclass
import secrets
from typing import TYPE_CHECKING, ClassVar

from aiohttp import web
from sqlalchemy import select

from gateway.audit.chain import AuditRow, record_fields
from gateway.bus.events import Event
from gateway.http import HttpError, json_object, json_response
from gateway.http.server import gateway_of, subject_of

from .access import http_access
from .model import Action
from .workflows import POLICE

if TYPE_CHECKING:
    from gateway.app import Gateway

MAX_NOTE = 2000


@dataclass
class ReportRaised(Event):
    """A report reached the police; fetch the note from ``GET /api/reports``."""

    topic: ClassVar[str] = "report.raised"
    camera_field: ClassVar[str] = "camera_id"
    report_id: str = ""
    camera_id: str = ""
    reporter: str = ""


async def raise_report(request: web.Request) -> web.Response:
    """Anyone watching a camera may report what it shows; the gate decides whether they watch it."""
    gw, subject = gateway_of(request), subject_of(request)
    body = await json_object(request)
    camera_id, note = body.get("camera_id"), body.get("note")
    if not isinstance(camera_id, str) or not camera_id:
        raise HttpError(400, "bad_field", "camera_id: required", field="camera_id")
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE:
        raise HttpError(400, "bad_field", f"note: 1 to {MAX_NOTE} characters", field="note")
    decision = await gw.policy.authorize(http_access(request, Action.VIEW_LIVE, gw.camera_resource(camera_id)))
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    report_id = secrets.token_hex(8)
    seq = await gw.audit.record(actor=subject.id, action="report", resource=f"camera:{camera_id}", decision="allow",
                                reason="suspicious information reported to the police", address=request.remote,
                                extra={"report_id": report_id, "note": note.strip()})
    gw.bus.publish(ReportRaised(report_id=report_id, camera_id=camera_id, reporter=subject.id))
    return json_response({"id": report_id, "audit_seq": seq}, status=201)


async def list_reports(request: web.Request) -> web.Response:
    """Newest first; police roles only (the notes may name people)."""
    gw, subject = gateway_of(request), subject_of(request)
    if not POLICE & subject.roles:
        raise HttpError(403, "forbidden", "reports are for the police roles")
    async with gw.db.session() as s:
        rows = list(await s.scalars(select(AuditRow).where(AuditRow.action == "report")
                                    .order_by(AuditRow.seq.desc()).limit(200)))
    return json_response({"reports": [
        {"id": r.extra.get("report_id"), "camera_id": r.resource.removeprefix("camera:"), "reporter": r.actor,
         "note": r.extra.get("note"), "time": record_fields(r)["time"], "audit_seq": r.seq} for r in rows]})


def add_routes(gw: Gateway) -> None:
    obj = {"type": "object"}
    gw.api.route("POST", "/api/reports", raise_report, summary="Report suspicious information seen on a camera (R16)",
                 tag="reports", body=obj, response=obj, status=201)
    gw.api.route("GET", "/api/reports", list_reports, summary="Reports raised from the wall (police roles)",
                 tag="reports", response=obj)
