"""Per-route body limits: a declared ``Content-Length`` over the route's limit is refused with 413
before any byte of the body is read, and a body without one (chunked) is read only up to it."""

from __future__ import annotations

from aiohttp import web

from .api import HttpError, body_rule


def too_large(limit: int) -> HttpError:
    return HttpError(413, "body_too_large", f"the request body is over this route's limit of {limit} bytes")


@web.middleware
async def limit_bodies(request: web.Request, handler):  # noqa: ANN001, ANN201
    if not request.body_exists:
        return await handler(request)
    limit = body_rule(request).max_bytes
    length = request.content_length
    if length is not None and length > limit:
        raise too_large(limit)
    return await handler(request.clone(client_max_size=limit))  # read() stops past the limit
