"""The admin pages (zh-CN/en): static files under ``gateway/web/admin``, served without a token
because they hold no data; every API call they make carries the session cookie."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.http import public

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


def add_pages(gw: Gateway) -> None:
    gw.api.route("GET", "/admin", admin_redirect, summary="Admin pages (redirect)", tag="admin", response=None)
    gw.api.route("GET", "/admin/{tail:.*}", admin_file, summary="Admin pages: retrievals, emergencies, relatives, "
                 "audit (zh-CN/en)", tag="admin", response={"type": "string"}, content_type="text/html")
    gw.links.append(("Admin (log in)", "{base}/admin/"))
