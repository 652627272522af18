"""One builder per egress for the gate's :class:`AccessRequest`: each fills in what its transport
knows (the authenticated subject, the request id, the egress name), so no caller assembles one by hand."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
import uuid

from .model import AccessRequest, Action, Resource, Subject, TimeWindow

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.app import Gateway


def _window(window: TimeWindow | tuple[datetime, datetime] | None) -> TimeWindow | None:
    if window is None or isinstance(window, TimeWindow):
        return window
    return TimeWindow(*window)


def http_access(request: web.Request, action: Action, resource: Resource, *,
                window: TimeWindow | tuple[datetime, datetime] | None = None, egress: str = "http",
                quiet: bool = False, detail: Mapping[str, Any] | None = None) -> AccessRequest:
    """A request arriving over HTTP (API, pages, WHEP signalling, recorded-video routes)."""
    from gateway.http.server import subject_of

    rid = request.headers.get("X-Request-Id", "")[:64] or None
    return AccessRequest(subject_of(request), action, resource, egress, _window(window), rid, quiet=quiet,
                         detail=detail or {})


def grpc_access(subject: Subject, action: Action, resource: Resource, *, on_behalf_of: Subject | None = None,
                window: TimeWindow | tuple[datetime, datetime] | None = None, quiet: bool = False) -> AccessRequest:
    """A gRPC call: the certificate's registered identity, narrowed by a token's user if one came."""
    return AccessRequest(subject, action, resource, "grpc", _window(window), uuid.uuid4().hex[:16],
                         on_behalf_of=on_behalf_of, quiet=quiet)


def subject_access(subject: Subject, action: Action, resource: Resource, egress: str, *,
                   window: TimeWindow | tuple[datetime, datetime] | None = None, quiet: bool = False,
                   request_id: str | None = None, detail: Mapping[str, Any] | None = None) -> AccessRequest:
    """A request made for an already authenticated subject off a transport of its own: export jobs,
    the event stream's per-event filter, a superior platform's SIP requests."""
    return AccessRequest(subject, action, resource, egress, _window(window), request_id, quiet=quiet,
                         detail=detail or {})


JUSTIFICATION_READERS = frozenset({"police_officer", "police_chief", "auditor", "emergency_commander",
                                   "emergency_agency_user"})


async def emergency_view(gw: Gateway, subject: Subject, data: Mapping[str, Any], egress: str) -> dict[str, Any]:
    """An emergency as ``subject`` may see it: its scope cut to the cameras they may list, and its
    justification only for police, auditors and the emergency roles (R2, R12)."""
    out = dict(data)
    for key in ("cameras", "scope_cameras"):
        if isinstance(out.get(key), list | tuple | set | frozenset):
            out[key] = [c for c in sorted(out[key]) if (await gw.policy.authorize(subject_access(
                subject, Action.LIST, gw.camera_resource(c), egress, quiet=True))).allowed]
    if not JUSTIFICATION_READERS & subject.roles and subject.kind != "token":
        out.pop("justification", None)
    return out
