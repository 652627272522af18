"""Route registration that documents itself: every route added here appears in OpenAPI 3.1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import json
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpError(web.HTTPException):
    """A JSON error: ``{"error": code, "message": text, "field": name?}``."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None, headers=None) -> None:
        self.status_code = status
        body = {"error": code, "message": message}
        if field:
            body["field"] = field
        super().__init__(text=json.dumps(body, ensure_ascii=False), content_type="application/json", headers=headers)


def json_response(data: Any, status: int = 200, **kw: Any) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str), **kw)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says so."""
    try:
        body = await request.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        raise HttpError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HttpError(400, "bad_json", "the body must be a JSON object")
    return body


def public(handler: Handler) -> Handler:
    """Mark a handler as reachable without a token (health, public catalogue, login)."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


class Api:
    """Adds routes to the app and their description to the OpenAPI document."""

    def __init__(self, app: web.Application, title: str, version: str) -> None:
        self.app = app
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
    ) -> None:
        self.app.router.add_route(method, path, handler)
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
        if getattr(handler, "public", False):
            op["security"] = []
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(path)
        ]
        params += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in (query or {}).items()]
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {"required": True, "content": {body_type: {"schema": body}}}
        oa_path = path.replace("{tail:.*}", "{tail}")
        self.doc["paths"].setdefault(oa_path, {})[method.lower()] = op


def _path_params(path: str) -> list[str]:
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            out.append(part[1:-1].split(":", 1)[0])
    return out
