"""HTTP API and pages of the catalog part (R3–R8, R17, R19), and ``setup(gw)`` that assembles it.

Public (no login, ``@public``): ``/catalogue`` (HTML), ``/catalogue.json``, ``/catalogue.csv`` and the
site-category vocabulary. Everything else needs a token; writes ask the policy gate for
``Action.MANAGE`` on the owning unit at the record's security level; confidential fields (R4) are
shown only to subjects the gate lets manage the camera and whose clearance reaches the system's
security level, in write responses exactly as in reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.bus import ChannelAdded, ChannelState
from gateway.config import NodeConfig
from gateway.http import HttpError, json_response, public
from gateway.http.server import gateway_of, subject_of
from gateway.policy import Action

from . import pages
from .compliance import Compliance, to_csv
from .config import CatalogConfig
from .importer import import_csv
from .models import CONFIDENTIAL
from .publication import Publisher
from .registry import Conflict, Forbidden, NotFound, Registry
from .rules import rules_for
from .schema import FieldError, Invalid
from .sites import categories

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
PART = web.AppKey("catalog", object)
KINDS = {"units": "unit", "sites": "site", "systems": "system", "cameras": "camera"}


class Catalog:
    def __init__(self, gw: Gateway, cfg: CatalogConfig) -> None:
        self.gw, self.cfg = gw, cfg
        self.zone = gw.config.get(NodeConfig).zone  # dates and times shown on pages
        self.registry = Registry(gw, rules_for(cfg.city))
        self.publisher = Publisher(self.registry)
        self.compliance = Compliance(self.registry, cfg.offline_threshold_s, self.zone)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.registry.resources.load()
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="catalog-liveness")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        """Record when bound channels were last seen online (R17: offline beyond a threshold)."""
        with self.gw.bus.subscribe(ChannelState.topic, ChannelAdded.topic) as sub:
            async for event in sub:
                try:
                    await self.registry.seen(event.channel_id, datetime.now(UTC))
                except Exception:
                    log.exception("catalog: recording liveness failed")


def _part(request: web.Request) -> Catalog:
    return request.app[PART]  # type: ignore[return-value]


class InvalidInput(web.HTTPUnprocessableEntity):
    """422 naming every refused field and why: ``errors: [{row?, field, reason, code}]``."""

    def __init__(self, exc: Invalid) -> None:
        first = exc.errors[0]
        body = {"error": exc.code, "message": str(exc), "field": first.field, "errors": [e.to_dict() for e in exc.errors]}
        super().__init__(text=json.dumps(body, ensure_ascii=False), content_type="application/json")


def guarded(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):  # noqa: ANN201
    """Map registry errors to HTTP; count rejections (``vsgw_catalog_rejected_total``)."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        gw = gateway_of(request)
        try:
            return await handler(request)
        except Invalid as exc:
            gw.metrics.inc("vsgw_catalog_rejected_total", reason=exc.code)
            raise InvalidInput(exc) from None
        except NotFound as exc:
            raise HttpError(404, "not_found", f"no {exc.kind} with this id") from None
        except Forbidden as exc:
            gw.metrics.inc("vsgw_catalog_rejected_total", reason="forbidden")
            raise HttpError(403, "forbidden", exc.reason, field=exc.field) from None
        except Conflict as exc:
            gw.metrics.inc("vsgw_catalog_rejected_total", reason="conflict")
            raise HttpError(409, "conflict", exc.reason, field=exc.field) from None

    wrapper.__name__ = handler.__name__
    wrapper.public = getattr(handler, "public", False)  # type: ignore[attr-defined]
    return wrapper


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Invalid([FieldError("body", "not valid JSON")]) from None


def row_json(kind: str, row: Any, reveal: bool = False) -> dict[str, Any]:
    """A record as JSON; camera confidential fields only when ``reveal`` (R4)."""
    hidden = set(CONFIDENTIAL["camera"]) if kind == "camera" and not reveal else set()
    cols = [c.name for c in row.__table__.columns if c.name not in hidden and c.name != "content"]
    out = {c: getattr(row, c) for c in cols}
    for k, v in out.items():
        if isinstance(v, datetime) and v.tzinfo is None:
            v = v.replace(tzinfo=UTC)  # SQLite drops the zone; every stored time is UTC
        if hasattr(v, "isoformat"):
            out[k] = v.isoformat()
    if hidden:
        out["confidential"] = "withheld (R4)"
    return out


async def _reveal(part: Catalog, request: web.Request, unit: str, level: int, ident: str) -> bool:
    subject = subject_of(request)
    return subject.clearance >= level and await part.registry.allow(subject, "camera", ident, unit, quiet=True,
                                                                    level=level)


async def _project(request: web.Request, kind: str, row: Any) -> dict[str, Any]:
    """The caller's view of a record, the same after a write as on a read: a camera's confidential
    fields only for a caller who may manage it at its system's security level (R4)."""
    if kind != "camera":
        return row_json(kind, row)
    part = _part(request)
    system = await part.registry.get("system", row.system_id)
    return row_json(kind, row, await _reveal(part, request, system.unit_id, system.security_level, row.id))


# -- records ------------------------------------------------------------------------------
@guarded
async def create_record(request: web.Request) -> web.Response:
    part, kind = _part(request), KINDS[request.match_info["kind"]]
    row = await part.registry.create(subject_of(request), kind, await _body(request))
    return json_response(await _project(request, kind, row), status=201)


@guarded
async def list_records(request: web.Request) -> web.Response:
    part, kind = _part(request), KINDS[request.match_info["kind"]]
    if kind == "camera":
        return await search_cameras(request)
    subject = subject_of(request)
    rows = await part.registry.list(kind, request.query.get("unit_id"))
    out = []
    allowed: dict[str, bool] = {}
    for row in rows:
        unit = row.id if kind == "unit" else row.unit_id
        if unit not in allowed:
            allowed[unit] = await part.registry.allow(subject, "unit", unit, unit, Action.LIST, quiet=True)
        if allowed[unit]:
            out.append(row_json(kind, row))
    return json_response({request.match_info["kind"]: out})


async def search_cameras(request: web.Request) -> web.Response:
    part = _part(request)
    q = request.query
    try:
        limit = min(max(int(q.get("limit", "50")), 1), 500)
        offset = max(int(q.get("offset", "0")), 0)
    except ValueError:
        raise HttpError(400, "invalid", "limit and offset must be whole numbers", field="limit") from None
    bound = {"true": True, "false": False}.get(q.get("bound", ""), None)
    rows, more = await part.registry.search_cameras(q=q.get("q", "")[:100], system_id=q.get("system_id"),
                                                     unit_id=q.get("unit_id"), site_category=q.get("site_category"),
                                                     bound=bound, limit=limit, offset=offset)
    subject = subject_of(request)
    seen: dict[tuple[str, int], tuple[bool, bool]] = {}
    out = []
    for cam, system in rows:
        key = (system.unit_id, system.security_level)
        if key not in seen:
            listed = await part.registry.allow(subject, "unit", system.unit_id, system.unit_id, Action.LIST, quiet=True)
            seen[key] = (listed, listed and await _reveal(part, request, system.unit_id, system.security_level, cam.id))
        listed, reveal = seen[key]
        if listed:
            out.append(row_json("camera", cam, reveal))
    return json_response({"cameras": out, "more": more, "limit": limit, "offset": offset})


@guarded
async def get_record(request: web.Request) -> web.Response:
    part, kind, ident = _part(request), KINDS[request.match_info["kind"]], request.match_info["id"]
    row = await part.registry.get(kind, ident)
    unit = await part.registry.unit_of(kind, row)
    if not await part.registry.allow(subject_of(request), kind, ident, unit, Action.LIST):
        raise Forbidden("not permitted to see this unit's records")
    out = await _project(request, kind, row)
    if kind == "system":
        out["filing_due"] = part.registry.rules.filing_due(row.accepted_on, row.pre_existing).isoformat() \
            if row.accepted_on else None
        if row.dismantled_on:
            out["notice_due"] = part.registry.rules.notice_due(row.dismantled_on).isoformat()
        docs = await part.registry.documents(ident)
        can = await part.registry.allow(subject_of(request), "system", ident, unit, quiet=True,
                                        level=row.security_level)
        out["documents"] = [{"id": d.id, "kind": d.kind, "sha256": d.sha256, "size": d.size,
                             "archived_at": d.archived_at.isoformat(),
                             "name": d.name if can or d.kind != "design" else "withheld (R4)"} for d in docs]
    return json_response(out)


@guarded
async def update_record(request: web.Request) -> web.Response:
    part, kind, ident = _part(request), KINDS[request.match_info["kind"]], request.match_info["id"]
    row = await part.registry.update(subject_of(request), kind, ident, await _body(request))
    return json_response(await _project(request, kind, row))


# -- workflows ----------------------------------------------------------------------------
@guarded
async def record_filing(request: web.Request) -> web.Response:
    part = _part(request)
    row = await part.registry.record_filing(subject_of(request), request.match_info["id"], await _body(request))
    return json_response(row_json("system", row))


@guarded
async def decommission(request: web.Request) -> web.Response:
    part = _part(request)
    row = await part.registry.decommission(subject_of(request), request.match_info["id"], await _body(request))
    out = row_json("system", row)
    if row.dismantled_on:
        due = part.registry.rules.notice_due(row.dismantled_on)
        out["notice_due"], out["notice_late"] = due.isoformat(), (row.notice_on is None or row.notice_on > due)
    return json_response(out)


@guarded
async def add_document(request: web.Request) -> web.Response:
    part, q = _part(request), request.query
    doc = await part.registry.add_document(subject_of(request), request.match_info["id"], q.get("kind", ""),
                                           q.get("name", ""), await request.read())
    return json_response({"id": doc.id, "kind": doc.kind, "sha256": doc.sha256, "size": doc.size}, status=201)


@guarded
async def get_document(request: web.Request) -> web.Response:
    part, sid = _part(request), request.match_info["id"]
    system = await part.registry.get("system", sid)
    await part.registry.require(subject_of(request), "system", sid, system.unit_id, system.security_level)
    try:
        doc = await part.registry.document(sid, int(request.match_info["doc"]))
    except ValueError:
        raise NotFound("document", "") from None
    return web.Response(body=doc.content, content_type="application/octet-stream",
                        headers={"X-Content-SHA256": doc.sha256})


@guarded
async def bind_camera(request: web.Request) -> web.Response:
    part = _part(request)
    body = await _body(request)
    channel = body.get("channel_id") if isinstance(body, dict) else None
    row = await part.registry.bind(subject_of(request), request.match_info["id"], channel)
    return json_response(await _project(request, "camera", row))


async def unbound_channels(request: web.Request) -> web.Response:
    """Live channels (GB/T 28181, RTSP, synthetic) not yet bound to a registry camera."""
    gw, part = gateway_of(request), _part(request)
    out = [{"id": c.id, "name": c.name, "adapter": c.adapter, "online": c.online}
           for c in sorted(gw.registry.channels.values(), key=lambda c: c.id) if c.id not in part.registry.resources]
    return json_response({"channels": out})


@guarded
async def import_records(request: web.Request) -> web.Response:
    part = _part(request)
    try:
        text = (await request.read()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid([FieldError("file", "not UTF-8 text", row=1)]) from None
    counts = await import_csv(part.registry, subject_of(request), text)
    return json_response({"imported": counts}, status=201)


# -- compliance ---------------------------------------------------------------------------
async def _findings(request: web.Request):  # noqa: ANN202
    part, subject = _part(request), subject_of(request)
    found = await part.compliance.findings(datetime.now(UTC), request.query.get("unit_id"), request.query.get("system_id"))
    allowed: dict[str, bool] = {}
    out = []
    for f in found:
        if f.unit_id not in allowed:
            allowed[f.unit_id] = await part.registry.allow(subject, "unit", f.unit_id, f.unit_id, Action.LIST, quiet=True)
        if allowed[f.unit_id]:
            out.append(f)
    return out


async def compliance_json(request: web.Request) -> web.Response:
    findings = await _findings(request)
    return json_response({"city": _part(request).cfg.city, "findings": [f.to_dict() for f in findings]})


async def compliance_csv(request: web.Request) -> web.Response:
    return web.Response(text=to_csv(await _findings(request)), content_type="text/csv", charset="utf-8")


async def compliance_html(request: web.Request) -> web.Response:
    part, lang = _part(request), pages.lang_of(request.query.get("lang"))
    html = pages.compliance_page(await _findings(request), lang, part.cfg.city, part.zone, datetime.now(UTC),
                                 request.query)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def admin_page(request: web.Request) -> web.Response:
    part = _part(request)
    systems = [(s.id, s.name, s.unit_id, s.status) for s in await part.registry.list("system")]
    lang = pages.lang_of(request.query.get("lang"))
    return web.Response(text=pages.admin_page(lang, systems, request.query), content_type="text/html", charset="utf-8")


# -- public -------------------------------------------------------------------------------
@public
async def catalogue_page(request: web.Request) -> web.Response:
    part = _part(request)
    pub = await part.publisher.current()
    html = pages.catalogue_page(pub, pages.lang_of(request.query.get("lang")), part.cfg.city, part.zone,
                                part.cfg.publisher, request.query)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@public
async def catalogue_json(request: web.Request) -> web.Response:
    return json_response((await _part(request).publisher.current()).to_json())


@public
async def catalogue_csv(request: web.Request) -> web.Response:
    pub = await _part(request).publisher.current()
    return web.Response(text=pub.to_csv(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="catalogue-v{pub.version}.csv"'})


@public
async def site_categories(request: web.Request) -> web.Response:
    return json_response({"categories": [c.to_dict() for c in categories().values()]})


def _bound(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], plural: str, verb: str):  # noqa: ANN202
    """One handler per record kind, so each route has its own OpenAPI path and operation id."""

    async def route(request: web.Request) -> web.StreamResponse:
        request.match_info["kind"] = plural
        return await handler(request)

    route.__name__ = f"{verb}_{KINDS[plural]}"
    return route


def setup(gw: Gateway) -> None:
    part = Catalog(gw, gw.config.get(CatalogConfig))
    gw.app[PART] = part
    gw.catalog = part  # type: ignore[attr-defined]
    gw.resource_resolver = part.registry.resources.resolve
    gw.on_start.append(part.start)
    gw.on_stop.append(part.stop)
    gw.links.append(("Public catalogue (R3)", "{base}/catalogue"))
    gw.links.append(("Registry admin", "{base}/catalog/admin?access_token={token}"))
    obj, r = {"type": "object"}, gw.api.route
    r("GET", "/api/catalog/site-categories", site_categories, summary="Site categories with their articles (R5, R6)",
      tag="catalog", response=obj)
    for plural, kind in KINDS.items():
        base = f"/api/catalog/{plural}"
        r("POST", base, _bound(create_record, plural, "create"), summary=f"Register a {kind}", tag="catalog",
          body=obj, response=obj, status=201)
        query = {n: {"type": "string"} for n in ("q", "unit_id", "system_id", "site_category", "bound", "limit",
                                                  "offset")} if kind == "camera" else {"unit_id": {"type": "string"}}
        r("GET", base, _bound(list_records, plural, "list"), summary=f"List {plural}" + (
          " (search: id/name prefix, system, unit, category; paged)" if kind == "camera" else ""), tag="catalog",
          response=obj, query=query)
        r("GET", base + "/{id}", _bound(get_record, plural, "get"), summary=f"One {kind}" + (
          " (confidential fields need clearance, R4)" if kind == "camera" else ""), tag="catalog", response=obj)
        r("PATCH", base + "/{id}", _bound(update_record, plural, "update"), summary=f"Change a {kind}" + (
          " (re-classifying into a prohibited site is refused, R6)" if kind == "camera" else ""), tag="catalog",
          body=obj, response=obj)
    r("POST", "/api/catalog/systems/{id}/filing", record_filing, summary="Record the police filing (R7)",
      tag="catalog", body=obj, response=obj)
    r("POST", "/api/catalog/systems/{id}/decommission", decommission, summary="Record notice and dismantling "
      "dates (R8); nothing is deleted", tag="catalog", body=obj, response=obj)
    r("POST", "/api/catalog/systems/{id}/documents", add_document, summary="Archive a design/construction/"
      "acceptance document with its SHA-256 (R7)", tag="catalog", body={"type": "string", "format": "binary"},
      body_type="application/octet-stream", query={"kind": {"type": "string"}, "name": {"type": "string"}},
      response=obj, status=201)
    r("GET", "/api/catalog/systems/{id}/documents/{doc}", get_document, summary="An archived document",
      tag="catalog", response={"type": "string", "format": "binary"}, content_type="application/octet-stream")
    r("PUT", "/api/catalog/cameras/{id}/binding", bind_camera, summary="Bind a camera to a live channel "
      "(or release with null)", tag="catalog", body=obj, response=obj)
    r("GET", "/api/catalog/channels/unbound", unbound_channels, summary="Live channels not bound to a camera",
      tag="catalog", response=obj)
    r("POST", "/api/catalog/import", import_records, summary="Bulk CSV import, all or nothing (row, field, reason)",
      tag="catalog", body={"type": "string"}, body_type="text/csv", response=obj, status=201)
    r("GET", "/api/catalog/compliance", compliance_json, summary="Compliance findings citing articles (R17)",
      tag="catalog", response=obj, query={"unit_id": {"type": "string"}, "system_id": {"type": "string"}})
    r("GET", "/api/catalog/compliance.csv", compliance_csv, summary="Compliance findings as CSV", tag="catalog",
      response={"type": "string"}, content_type="text/csv")
    r("GET", "/catalog/compliance.html", compliance_html, summary="Printable compliance report (zh-CN/en)",
      tag="catalog", response={"type": "string"}, content_type="text/html")
    r("GET", "/catalog/admin", admin_page, summary="Registry admin page (zh-CN/en)", tag="catalog",
      response={"type": "string"}, content_type="text/html")
    r("GET", "/catalogue", catalogue_page, summary="Public catalogue page (R3), zh-CN or ?lang=en", tag="public",
      response={"type": "string"}, content_type="text/html")
    r("GET", "/catalogue.json", catalogue_json, summary="Public catalogue as JSON (R3)", tag="public", response=obj)
    r("GET", "/catalogue.csv", catalogue_csv, summary="Public catalogue as CSV (R3)", tag="public",
      response={"type": "string"}, content_type="text/csv")
