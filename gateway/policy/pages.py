"""The admin pages (zh-CN/en): static files under ``gateway/web/admin``, served without a token
because they hold no data; every API call they make carries the session cookie. ``/api/ui-config``
tells pages the zone to show times in (``[node] time_zone``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config import NodeConfig
from gateway.http import json_response, public
from gateway.http.server import gateway_of

if TYPE_CHECKING:
    from gateway.app import Gateway

ADMIN = Path(__file__).resolve().parents[1] / "web" / "admin"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@public
async def admin_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("tail") or "index.html"
    path = (ADMIN / name).resolve()
    if ADMIN not in path.parents or not path.is_file() or path.suffix not in TYPES:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": TYPES[path.suffix], "Cache-Control": "no-cache",
                                           "Content-Security-Policy": "default-src 'self'"})


@public
async def admin_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin/")


@public
async def ui_config(request: web.Request) -> web.Response:
    """What every page needs before login: the IANA zone people read times in (storage is UTC)."""
    return json_response({"time_zone": gateway_of(request).config.get(NodeConfig).time_zone})


def add_pages(gw: Gateway) -> None:
    gw.api.route("GET", "/admin", admin_redirect, summary="Admin pages (redirect)", tag="admin", response=None)
    gw.api.route("GET", "/admin/{tail:.*}", admin_file, summary="Admin pages: retrievals, emergencies, relatives, "
                 "audit (zh-CN/en)", tag="admin", response={"type": "string"}, content_type="text/html")
    gw.api.route("GET", "/api/ui-config", ui_config, summary="Display settings for pages: the time zone times are "
                 "shown in", tag="admin", response={"type": "object", "required": ["time_zone"],
                                                    "properties": {"time_zone": {"type": "string"}}})
    gw.links.append(("Admin (log in)", "{base}/admin/"))
