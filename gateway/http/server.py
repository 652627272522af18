"""The aiohttp application: auth and error middlewares, and the core routes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from .api import Api, HttpError
from .auth import request_token

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
    app = web.Application(middlewares=[_errors, _authenticate], client_max_size=64 * 1024 * 1024)
    app[GATEWAY] = gw
    return app, Api(app, "vsgw gateway API", gw.version)


@web.middleware
async def _errors(request: web.Request, handler):  # noqa: ANN001
    gw = gateway_of(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            gw.metrics.inc("vsgw_http_rejected_total", status=str(exc.status))
        if exc.status >= 400 and exc.content_type != "application/json" and not isinstance(exc, HttpError):
            raise HttpError(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason) from None
        raise
    except Exception:
        gw.metrics.inc("vsgw_http_errors_total")
        log.exception("unhandled error on %s %s", request.method, request.path)
        raise HttpError(500, "internal", "internal error; see the gateway log") from None


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
