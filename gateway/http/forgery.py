"""The request-forgery guard (R18): a browser attaches the session cookie to requests that any page
makes, including pages on another port of the same host, which SameSite does not tell apart.

So an unsafe request (POST/PUT/PATCH/DELETE) that a cookie authenticates must prove it comes from
the gateway's own pages, by an ``Origin`` equal to the request's scheme, host and port or by
``Sec-Fetch-Site: same-origin``, and a body must have the media type its route declares (JSON
unless the route takes uploads), which a cross-site form or ``no-cors`` fetch cannot send.
Requests with a bearer header or ``access_token`` carry a credential no other page knows and pass;
any unsafe request that a browser marks as coming from elsewhere is refused, logins included."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from .api import HttpError, body_rule
from .auth import request_credential

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ELSEWHERE = frozenset({"same-site", "cross-site"})


def origin_of(request: web.Request) -> str:
    """"same", "foreign" or "absent": where the browser says the request comes from."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site in _ELSEWHERE or (origin is not None and not _same_origin(origin, request.url)):
        return "foreign"
    if origin is not None or site == "same-origin":
        return "same"
    return "absent"


def _same_origin(origin: str, url: URL) -> bool:
    try:
        other = URL(origin)
        return (other.scheme.lower(), (other.host or "").lower(), other.port) == \
               (url.scheme.lower(), (url.host or "").lower(), url.port)
    except (ValueError, TypeError):  # "null", or not a URL at all
        return False


@web.middleware
async def refuse_forgery(request: web.Request, handler):  # noqa: ANN001, ANN201
    if request.method not in UNSAFE:
        return await handler(request)
    _, source = request_credential(request)
    if source in ("header", "query"):
        return await handler(request)
    where = origin_of(request)
    public = getattr(request.match_info.route.handler, "public", False)
    if where == "foreign" or (source == "cookie" and not public and where != "same"):
        raise HttpError(403, "cross_origin", "a session cookie is honoured only on requests from this "
                        "gateway's own pages (same Origin); other clients send a bearer token")
    if source == "cookie" and request.body_exists:
        expected = body_rule(request).content_type
        if request.content_type != expected:
            raise HttpError(403, "content_type", f"this route takes {expected} bodies from a browser session")
    return await handler(request)
