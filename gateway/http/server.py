"""The aiohttp application and its middlewares, outermost first: JSON errors (every refusal
counted, internals never in a body), malformed targets, request forgery, body limits, auth."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from aiohttp import web

from .api import PUBLIC_MAX_BODY, Api, HttpError, body_rule
from .auth import request_token
from .forgery import refuse_forgery
from .limits import limit_bodies, too_large
from .paths import reject_malformed_targets

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
GATEWAY = web.AppKey("gateway", object)
SUBJECT = web.RequestKey("subject", object)


def gateway_of(request: web.Request) -> Gateway:
    return request.app[GATEWAY]  # type: ignore[return-value]


def subject_of(request: web.Request):  # noqa: ANN201 - Subject
    return request[SUBJECT]


def create_app(gw: Gateway) -> tuple[web.Application, Api]:
    app = web.Application(middlewares=[_errors, reject_malformed_targets, refuse_forgery, limit_bodies, _authenticate],
                          client_max_size=PUBLIC_MAX_BODY)  # limit_bodies raises it per route
    app[GATEWAY] = gw
    return app, Api(app, "vsgw gateway API", gw.version)


@web.middleware
async def _errors(request: web.Request, handler):  # noqa: ANN001
    gw = gateway_of(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _as_json(exc, request)
        gw.metrics.inc("vsgw_http_rejected_total", status=str(error.status))
        gw.metrics.inc("vsgw_http_refused_total", error=getattr(error, "code", f"http_{error.status}"))
        if error is exc:
            raise
        raise error from None
    except Exception:
        request_id = secrets.token_hex(8)
        gw.metrics.inc("vsgw_http_errors_total")
        log.exception("unhandled error (request %s) on %s %s", request_id, request.method, request.path)
        raise HttpError(500, "internal", "internal error; the gateway log has the details under this request id",
                        request_id=request_id, headers={"X-Request-Id": request_id}) from None


def _as_json(exc: web.HTTPException, request: web.Request) -> web.HTTPException:
    """aiohttp's own errors (404, 405, 413 from a capped read) as JSON errors like ours."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return too_large(body_rule(request).max_bytes)
    if isinstance(exc, HttpError) or exc.content_type == "application/json":
        return exc
    return HttpError(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


@web.middleware
async def _authenticate(request: web.Request, handler):  # noqa: ANN001
    route = request.match_info.route
    if getattr(route.handler, "public", False) or request.method == "OPTIONS":
        return await handler(request)
    token = request_token(request)
    subject = None
    if token:
        for auth in gateway_of(request).authenticators:
            subject = await auth(token, request)
            if subject is not None:
                break
    if subject is None:
        raise HttpError(
            401, "unauthorized", "a valid token is required", headers={"WWW-Authenticate": 'Bearer realm="vsgw"'}
        )
    request[SUBJECT] = subject
    return await handler(request)
