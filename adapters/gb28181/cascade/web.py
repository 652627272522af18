"""``GET /api/cascade/superiors``: each superior link's state, for those who may manage the platform.

The links belong to the platform, not to a department: the resource carries a unit no department
matches, so only roles not scoped to a unit (system administrators, the service token) see it.
Addresses are shown (the caller manages them); passwords never are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.http.api import HttpError, json_response
from gateway.http.server import gateway_of
from gateway.policy import Action, Resource
from gateway.policy.access import http_access
from gateway.recording.index import iso

if TYPE_CHECKING:
    from .link import Link

RESOURCE = Resource("system", "cascade", unit="platform")
LINKS = web.AppKey("cascade_links", list)
SUPERIOR = {
    "type": "object",
    "properties": {
        "server_id": {"type": "string"}, "name": {"type": "string"}, "local_id": {"type": "string"},
        "host": {"type": "string"}, "port": {"type": "integer"}, "transport": {"type": "string"},
        "local_port": {"type": ["integer", "null"]},
        "state": {"type": "string", "enum": ["idle", "registering", "registered", "failed", "stopped"]},
        "reason": {"type": "string"}, "since": {"type": ["string", "null"]},
        "registered_at": {"type": ["string", "null"]}, "expires": {"type": "integer"},
        "next_refresh": {"type": ["string", "null"]}, "next_attempt": {"type": ["string", "null"]},
        "last_keepalive": {"type": ["string", "null"]}, "keepalive_misses": {"type": "integer"},
        "counts": {"type": "object"},
        "subject": {"type": "object", "description": "what the gate decides the superior's requests as"},
    },
}


def _iso(ts: float) -> str | None:
    return iso(datetime.fromtimestamp(ts, UTC)) if ts else None


def link_json(link: Link) -> dict[str, Any]:
    sup, st = link.sup, link.status
    return {
        "server_id": sup.server_id, "name": sup.label, "local_id": sup.local_id, "host": sup.host, "port": sup.port,
        "transport": sup.transport, "local_port": link.endpoint.port or None,
        "state": st.state, "reason": st.reason, "since": _iso(st.since), "registered_at": _iso(st.registered_at),
        "expires": st.expires, "next_refresh": _iso(st.next_refresh) if st.state == "registered" else None,
        "next_attempt": _iso(st.next_attempt) if st.state == "failed" else None,
        "last_keepalive": _iso(st.last_keepalive), "keepalive_misses": st.keepalive_misses,
        "counts": {"attempts": st.attempts, "registrations": st.registrations, "failures": st.failures,
                   "consecutive_failures": st.consecutive_failures},
        "subject": {"id": link.subject.id, "tier": sup.tier, "clearance": sup.clearance, "unit": sup.unit or None,
                    "include": list(sup.include), "exclude": list(sup.exclude)},
    }


async def list_superiors(request: web.Request) -> web.Response:
    decision = await gateway_of(request).policy.authorize(http_access(request, Action.MANAGE, RESOURCE))
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    return json_response({"superiors": [link_json(link) for link in request.app[LINKS]]})


def add_routes(gw: Any, links: list[Link]) -> None:
    gw.app[LINKS] = links
    gw.api.schema("CascadeSuperior", SUPERIOR)
    gw.api.route("GET", "/api/cascade/superiors", list_superiors, tag="cascade",
                 summary="The superior platforms vsgw registers to, with their registration state",
                 response={"type": "object", "properties": {"superiors": {
                     "type": "array", "items": {"$ref": "#/components/schemas/CascadeSuperior"}}}})
