"""Route registration that documents itself: every route added here appears in OpenAPI 3.1, and
declares what body it takes (content type and size), which the HTTP guards enforce."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import json
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KIB, MIB = 1024, 1024 * 1024
PUBLIC_MAX_BODY = 16 * KIB  # login and other routes anyone can reach: no reason for more
JSON_MAX_BODY = 1 * MIB
UPLOAD_MAX_BODY = 64 * MIB
UPLOAD_TYPES = frozenset({"application/octet-stream", "text/csv", "multipart/form-data"})


@dataclass(frozen=True, slots=True)
class BodyRule:
    """What a route accepts as a request body: its media type and at most how many bytes."""

    content_type: str
    max_bytes: int


STRICTEST = BodyRule("application/json", PUBLIC_MAX_BODY)  # unmatched paths and undeclared routes
BODY_RULES = web.AppKey("body_rules", dict)  # route -> BodyRule


def body_rule(request: web.Request) -> BodyRule:
    return request.app[BODY_RULES].get(request.match_info.route, STRICTEST)


class HttpError(web.HTTPException):
    """A JSON error: ``{"error": code, "message": text, "field": name?, "request_id": id?}``."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 request_id: str | None = None, headers=None) -> None:  # noqa: ANN001
        self.status_code = status
        self.code = code
        body = {"error": code, "message": message}
        if field:
            body["field"] = field
        if request_id:
            body["request_id"] = request_id
        super().__init__(text=json.dumps(body, ensure_ascii=False), content_type="application/json", headers=headers)


def json_response(data: Any, status: int = 200, **kw: Any) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str), **kw)


def public(handler: Handler) -> Handler:
    """Mark a handler as reachable without a token (health, public catalogue, login)."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


class Api:
    """Adds routes to the app and their description to the OpenAPI document."""

    def __init__(self, app: web.Application, title: str, version: str) -> None:
        self.app = app
        app[BODY_RULES] = {}
        self.doc: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {
                    "Error": {
                        "type": "object",
                        "required": ["error", "message"],
                        "properties": {
                            "error": {"type": "string"},
                            "message": {"type": "string"},
                            "field": {"type": "string"},
                        },
                    }
                },
            },
            "security": [{"bearer": []}],
            "paths": {},
        }

    def schema(self, name: str, schema: dict[str, Any]) -> None:
        self.doc["components"]["schemas"][name] = schema

    def route(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        summary: str,
        tag: str,
        response: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        body_type: str = "application/json",
        query: dict[str, dict[str, Any]] | None = None,
        content_type: str = "application/json",
        status: int = 200,
        max_body: int | None = None,
    ) -> None:
        """``body_type`` is the only media type a browser session may send here; ``max_body``
        overrides the size limit (public routes 16 KiB, uploads 64 MiB, anything else 1 MiB)."""
        route = self.app.router.add_route(method, path, handler)
        public_route = getattr(handler, "public", False)
        if max_body is None:
            max_body = (PUBLIC_MAX_BODY if public_route else UPLOAD_MAX_BODY if body_type in UPLOAD_TYPES
                        else JSON_MAX_BODY)
        self.app[BODY_RULES][route] = BodyRule(body_type, max_body)
        op: dict[str, Any] = {
            "summary": summary,
            "tags": [tag],
            "operationId": f"{method.lower()}_{handler.__name__}",
            "responses": {
                str(status): {
                    "description": "OK",
                    **({"content": {content_type: {"schema": response}}} if response is not None else {}),
                },
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if public_route:
            op["security"] = []
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(path)
        ]
        params += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in (query or {}).items()]
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {"required": True, "description": f"at most {max_body} bytes",
                                 "content": {body_type: {"schema": body}}}
        oa_path = path.replace("{tail:.*}", "{tail}")
        self.doc["paths"].setdefault(oa_path, {})[method.lower()] = op


def _path_params(path: str) -> list[str]:
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            out.append(part[1:-1].split(":", 1)[0])
    return out
