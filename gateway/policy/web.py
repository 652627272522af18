"""HTTP for identity, the retrieval workflow, emergencies, relatives' grants and the audit trail.

``setup(gw)`` installs the real gate, the durable audit trail and session authentication."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
import hashlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from gateway.audit.chain import AuditRow, ChainAudit, record_fields
from gateway.http import HttpError, json_object, json_response, public
from gateway.http.api import MIB
from gateway.http.auth import COOKIE
from gateway.http.server import gateway_of, subject_of
from gateway.identity.service import Identity, IdentityConfig, LoginError

from .access import emergency_view, http_access
from .gate import TieredGate
from .grants import EmergencyRow, RetrievalRow
from .model import Action, Resource
from .pages import add_pages
from .reports import add_routes as add_report_routes
from .revocation import add_routes as add_revocation_routes
from .workflows import Refused, Workflows

if TYPE_CHECKING:
    from gateway.app import Gateway

STATE = web.AppKey("policy", object)


def _state(request: web.Request) -> tuple[Identity, Workflows, TieredGate]:
    return request.app[STATE]  # type: ignore[return-value]


async def _run(coro):  # noqa: ANN001, ANN202
    try:
        return await coro
    except Refused as exc:
        raise HttpError(exc.status, "refused", str(exc), field=exc.field) from None


def _iso(when: datetime | None) -> str | None:
    return None if when is None else (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def _request_json(row: RetrievalRow) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "requester": row.requester, "second_officer": row.second_officer,
            "purpose": row.purpose, "case_number": row.case_number, "document_sha256": row.document_sha256,
            "cameras": row.cameras, "start": _iso(row.start), "end": _iso(row.end), "action": row.action,
            "decided_by": row.decided_by, "reason": row.reason, "grant_id": row.grant_id}


def _emergency_json(row: EmergencyRow) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "cameras": row.cameras, "units": row.units, "districts": row.districts,
            "justification": row.justification, "declared_by": row.declared_by, "expires": _iso(row.expires),
            "ended_at": _iso(row.ended_at), "end_reason": row.end_reason, "reviewed_by": row.reviewed_by}


# -- identity ------------------------------------------------------------------------------
@public
async def login(request: web.Request) -> web.Response:
    identity, _, _ = _state(request)
    body = await json_object(request)
    gw = gateway_of(request)
    username = str(body.get("username", ""))
    try:
        token, expires, subject = await identity.login(username, str(body.get("password", "")),
                                                       body.get("totp") and str(body["totp"]), request.remote)
    except LoginError as exc:  # one answer for every cause; the audit keeps the true one
        await gw.audit.record(actor=f"user:{username[:64]}", action="login", resource="session", decision="deny",
                              reason=exc.reason, address=request.remote)
        raise HttpError(401, "login_refused", str(exc)) from None
    await gw.audit.record(actor=subject.id, action="login", resource="session", decision="allow",
                          reason="password" + (" + TOTP" if body.get("totp") else ""), address=request.remote)
    resp = json_response({"token": token, "expires_at": expires.isoformat(),
                          "user": {"name": subject.name, "roles": sorted(subject.roles), "unit": subject.unit}})
    resp.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict", secure=request.secure,
                    expires=expires.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    return resp


async def logout(request: web.Request) -> web.Response:
    identity, _, _ = _state(request)
    header = request.headers.get("Authorization", "")
    token = header[7:] if header[:7].lower() == "bearer " else request.cookies.get("vsgw_token", "")
    await identity.logout(token)
    resp = json_response({"ok": True})
    resp.del_cookie("vsgw_token")
    return resp


async def me(request: web.Request) -> web.Response:
    s = subject_of(request)
    return json_response({"id": s.id, "name": s.name, "roles": sorted(s.roles), "unit": s.unit,
                          "district": s.district, "clearance": s.clearance, "tier": s.tier})


# -- retrieval (R11) -----------------------------------------------------------------------
async def create_retrieval(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    row = await _run(flows.create_request(subject_of(request), await json_object(request)))
    return json_response(_request_json(row), status=201)


async def list_retrievals(request: web.Request) -> web.Response:
    """Requests the caller may act on: police and auditors see all; others their own and their unit's."""
    gw, s = gateway_of(request), subject_of(request)
    async with gw.db.session() as db:
        rows = list(await db.scalars(select(RetrievalRow).order_by(RetrievalRow.created.desc()).limit(200)))
    if not {"police_chief", "police_officer", "auditor"} & s.roles:
        rows = [r for r in rows if s.id in (r.requester, r.second_officer) or
                ("department_admin" in s.roles and any(gw.camera_resource(c).unit == s.unit for c in r.cameras))]
    return json_response({"requests": [_request_json(r) for r in rows]})


async def get_retrieval(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    row = await _run(flows._load(request.match_info["id"]))
    s = subject_of(request)
    if s.id not in (row.requester, row.second_officer) and not {"police_chief", "police_officer", "auditor"} & s.roles:
        raise HttpError(403, "forbidden", "not a party to this request")
    return json_response(_request_json(row))


def _retrieval_step(step: str):  # noqa: ANN202
    async def handler(request: web.Request) -> web.Response:
        _, flows, _ = _state(request)
        subject, rid = subject_of(request), request.match_info["id"]
        body = await json_object(request)  # every step states itself in a JSON body: no empty-body forgery
        row = await _run(flows.confirm(subject, rid) if step == "confirm" else getattr(flows, step)(subject, rid, body))
        return json_response(_request_json(row))

    handler.__name__ = f"retrieval_{step}"
    return handler


# -- relatives (R13) ---------------------------------------------------------------------------
async def relative_grant(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    row, token = await _run(flows.grant_relative(subject_of(request), await json_object(request)))
    return json_response({"grant_id": row.id, "token": token, "expires_at": _iso(row.expires),
                          "cameras": row.cameras, "wall_url": f"/wall/?token={token}"}, status=201)


# -- emergencies (R12) -------------------------------------------------------------------------
async def declare_emergency(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    row = await _run(flows.declare(subject_of(request), await json_object(request)))
    return json_response(_emergency_json(row), status=201)


async def list_emergencies(request: web.Request) -> web.Response:
    _, _, gate = _state(request)
    gw, subject = gateway_of(request), subject_of(request)
    return json_response({"active": [await emergency_view(gw, subject, {
        "id": e.id, "kind": e.kind, "cameras": sorted(e.cameras), "units": sorted(e.units),
        "districts": sorted(e.districts), "expires": e.expires.isoformat()}, "http") for e in gate.emergencies.values()]})


async def renew_emergency(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    em = await _run(flows.renew(subject_of(request), request.match_info["id"], await json_object(request)))
    return json_response({"id": em.id, "expires": em.expires.isoformat()})


async def end_emergency(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    subject = subject_of(request)
    if "emergency_commander" not in subject.roles:
        raise HttpError(403, "forbidden", "only an emergency commander ends an emergency")
    await _run(flows.end(request.match_info["id"], "ended by the commander", subject))
    return json_response({"ok": True})


async def review_emergency(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    row = await _run(flows.review(subject_of(request), request.match_info["id"], await json_object(request)))
    return json_response(_emergency_json(row))


async def open_reviews(request: web.Request) -> web.Response:
    _, flows, _ = _state(request)
    gw, subject = gateway_of(request), subject_of(request)
    return json_response({"open": [await emergency_view(gw, subject, _emergency_json(r), "http")
                                   for r in await flows.open_reviews()]})


# -- audit (R10, R16, R18) --------------------------------------------------------------------
async def _audit_rows(request: web.Request, action: Action) -> list[AuditRow]:
    """One bounded page of the trail, newest first: ``limit`` (1-1000, default 100) records with
    ``seq`` below the ``before`` cursor; filters by actor, action, resource, decision."""
    gw = gateway_of(request)
    decision = await gw.policy.authorize(http_access(request, action, Resource("audit", "trail")))
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    q = select(AuditRow).order_by(AuditRow.seq.desc())
    for name in ("actor", "action", "resource", "decision"):
        if request.query.get(name):
            q = q.where(getattr(AuditRow, name) == request.query[name])

    def number(name: str, default: int | None, lo: int, hi: int) -> int | None:
        """A bounded whole number from the query: a bad one is a 400, never a silent clamp."""
        if name not in request.query:
            return default
        raw = request.query[name]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and lo <= int(raw) <= hi):
            raise HttpError(400, "bad_query", f"{name}: expected a whole number from {lo} to {hi}", field=name)
        return int(raw)

    limit = number("limit", 100, 1, 1000)  # newest first, one page
    before = number("before", None, 1, 2**63 - 1)  # cursor: the last page's smallest seq
    if before is not None:
        q = q.where(AuditRow.seq < before)
    async with gw.db.session() as s:
        return list(await s.scalars(q.limit(limit)))


async def search_audit(request: web.Request) -> web.Response:
    rows = await _audit_rows(request, Action.LIST)
    return json_response({"records": [{"seq": r.seq, **record_fields(r), "hash": r.hash} for r in rows]})


async def export_audit(request: web.Request) -> web.Response:
    """Signed JSON lines: each record with its hash; the last line signs the export's digest."""
    rows = await _audit_rows(request, Action.EXPORT)
    audit: ChainAudit = gateway_of(request).audit  # type: ignore[assignment]
    lines = [json.dumps({"seq": r.seq, **record_fields(r), "prev_hash": r.prev_hash, "hash": r.hash},
                        ensure_ascii=False, sort_keys=True) for r in reversed(rows)]
    body = "\n".join(lines)
    digest = hashlib.sha256(body.encode()).hexdigest()
    sig = audit.key.sign(digest.encode()).hex()
    text = body + "\n" + json.dumps({"export_sha256": digest, "signature_ed25519": sig}) + "\n"
    return web.Response(text=text, content_type="application/x-ndjson")


async def audit_key(request: web.Request) -> web.Response:
    """The gateway's Ed25519 public key, to check checkpoints and exports out of band."""
    audit: ChainAudit = gateway_of(request).audit  # type: ignore[assignment]
    pem = audit.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return web.Response(text=pem.decode(), content_type="application/x-pem-file")


def setup(gw: Gateway) -> None:
    cfg = gw.config.get(IdentityConfig)
    identity, audit, gate = gw.identity, gw.audit, gw.policy
    flows = Workflows(gw, gate, identity)
    gw.app[STATE] = (identity, flows, gate)

    flusher: list[asyncio.Task[None]] = []

    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(5)
            await gate.flush()

    async def start() -> None:
        await audit.start()
        flusher.append(asyncio.get_running_loop().create_task(flush_forever(), name="policy-quiet-flush"))
        await identity.load()
        for spec in cfg.clients:
            cn, _, rest = spec.partition("=")
            tier, _, rest = rest.partition(":")
            clearance, _, unit = rest.partition(":")
            await identity.add_client(cn, tier or "police", int(clearance or 1), unit or None)
        await flows.start()

    async def stop() -> None:
        for task in flusher:
            task.cancel()
        await asyncio.gather(*flusher, return_exceptions=True)
        await gate.flush()
        await flows.stop()
        await audit.stop()

    gw.on_start.append(start)
    gw.on_stop.append(stop)
    obj = {"type": "object"}
    r = gw.api.route
    r("POST", "/api/login", login, summary="Log in (password; TOTP for privileged roles)", tag="identity", body=obj, response=obj)
    r("POST", "/api/logout", logout, summary="End this session", tag="identity", response=obj)
    r("GET", "/api/me", me, summary="Who the caller is", tag="identity", response=obj)
    r("POST", "/api/retrievals", create_retrieval, max_body=16 * MIB, summary="File a retrieval request (R11)", tag="retrieval", body=obj, response=obj, status=201)
    r("GET", "/api/retrievals", list_retrievals, summary="Retrieval requests the caller may act on", tag="retrieval",
      response=obj)
    r("GET", "/api/retrievals/{id}", get_retrieval, summary="A retrieval request", tag="retrieval", response=obj)
    for step, text in (("confirm", "Second officer confirms"), ("approve", "Approve (police chief / police)"),
                       ("refuse", "Refuse with a reason (system manager)")):
        r("POST", f"/api/retrievals/{{id}}/{step}", _retrieval_step(step), summary=text, tag="retrieval", response=obj)
    r("POST", "/api/relative-grants", relative_grant, summary="Grant a relative view-only access (R13)", tag="grants", body=obj, response=obj, status=201)
    r("POST", "/api/emergencies", declare_emergency, summary="Declare an emergency (R12)", tag="emergency", body=obj, response=obj, status=201)
    r("GET", "/api/emergencies", list_emergencies, summary="Active emergencies", tag="emergency", response=obj)
    r("POST", "/api/emergencies/{id}/renew", renew_emergency, summary="Renew an emergency", tag="emergency", body=obj, response=obj)
    r("POST", "/api/emergencies/{id}/end", end_emergency, summary="End an emergency", tag="emergency", response=obj)
    r("POST", "/api/emergencies/{id}/review", review_emergency, summary="Sign off the after-action review", tag="emergency", body=obj, response=obj)
    r("GET", "/api/reviews", open_reviews, summary="Emergencies awaiting review", tag="emergency", response=obj)
    r("GET", "/api/audit", search_audit, summary="Search the audit trail (auditors)", tag="audit", response=obj,
      query={n: {"type": "string"} for n in ("actor", "action", "resource", "decision", "limit", "before")})
    r("GET", "/api/audit/export", export_audit, summary="Signed JSON-lines export (auditors)", tag="audit",
      response={"type": "string"}, content_type="application/x-ndjson")
    r("GET", "/api/audit/key", audit_key, summary="The gateway's Ed25519 public key (PEM)", tag="audit",
      response={"type": "string"}, content_type="application/x-pem-file")
    add_report_routes(gw)
    add_revocation_routes(gw)
    add_pages(gw)
