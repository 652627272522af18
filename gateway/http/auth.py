"""HTTP authentication: bearer token (header), ``access_token`` query (EventSource, WHEP
links) or the ``vsgw_token`` cookie. Identity-aware authenticators can be chained in.

Only the cookie is sent by a browser on its own; which credential a request carries decides
whether the forgery guard applies to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import hashlib
import hmac

from aiohttp import web

from gateway.policy import Subject

Authenticator = Callable[[str, web.Request], Awaitable[Subject | None]]


COOKIE = "vsgw_token"


def request_credential(request: web.Request) -> tuple[str | None, str | None]:
    """(token, where it came from: "header", "query", "cookie" or None)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None, "header"
    if request.query.get("access_token"):
        return request.query["access_token"], "query"
    if request.cookies.get(COOKIE):
        return request.cookies[COOKIE], "cookie"
    return None, None


def request_token(request: web.Request) -> str | None:
    return request_credential(request)[0]


class StaticTokens:
    """Configured API tokens; each maps to a full-access service subject."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = {hashlib.sha256(t.encode()).digest(): t for t in tokens}

    async def __call__(self, token: str, request: web.Request) -> Subject | None:
        digest = hashlib.sha256(token.encode()).digest()
        for known in self._tokens:
            if hmac.compare_digest(known, digest):
                return Subject(
                    id=f"token:{digest.hex()[:12]}",
                    kind="token",
                    name="api token",
                    roles=frozenset({"system_admin", "wall_operator"}),
                    clearance=9,
                    address=request.remote,
                )
        return None
