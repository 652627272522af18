"""Real people for the tests (no tests here): users created through ``gw.identity`` with the roles,
clearance, tier and unit a test needs and logged in (with their TOTP code when the role needs one),
approved grants obtained through the real HTTP routes, and the audit rows the real gate wrote.

Give the gateway ``identity=FAST_ARGON2`` so that creating a user costs milliseconds, not seconds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp
import pyotp
from sqlalchemy import select

from gateway.audit.chain import AuditRow

from .test_policy_support import FAST_ARGON2, PASSWORD, request_body

__all__ = ["FAST_ARGON2", "approved_retrieval", "bearer", "person", "relative_grant", "trail"]


async def person(gw: Any, name: str, *roles: str, **kw: Any) -> str:
    """Create user ``name`` with ``roles`` (and ``clearance``, ``tier``, ``unit``…) and log in;
    returns the session token."""
    secret = await gw.identity.add_user(name, PASSWORD, list(roles), **kw)
    token, _, _ = await gw.identity.login(name, PASSWORD, pyotp.TOTP(secret).now() if secret else None, "127.0.0.1")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _post(gw: Any, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, \
            http.post(f"http://127.0.0.1:{gw.http_port}{path}", json=body, headers=bearer(token)) as r:
        out = await r.json()
        assert r.status in (200, 201), (path, r.status, out)
        return out


async def approved_retrieval(gw: Any, cameras: list[str], start: datetime, end: datetime,
                             action: str = "copy") -> tuple[str, str]:
    """A police retrieval request for ``cameras`` over [start, end], filed by officer ``li``,
    confirmed by officer ``zhao`` and approved by chief ``wang`` (R11); returns (li's token, grant id)."""
    li = await person(gw, "li", "police_officer", clearance=5, tier="police")
    zhao = await person(gw, "zhao", "police_officer", clearance=5, tier="police")
    wang = await person(gw, "wang", "police_chief", clearance=5, tier="police")
    body = {**request_body(cameras, action), "start": start.isoformat(), "end": end.isoformat()}
    rid = (await _post(gw, "/api/retrievals", li, body))["id"]
    await _post(gw, f"/api/retrievals/{rid}/confirm", zhao, {})
    return li, (await _post(gw, f"/api/retrievals/{rid}/approve", wang, {"hours": 1}))["grant_id"]


async def relative_grant(gw: Any, cameras: list[str], start: datetime, end: datetime,
                         officer: str = "officer") -> tuple[str, str]:
    """A relatives' view-only grant (R13) made by a new police officer through
    ``POST /api/relative-grants``; returns (the relative's token, grant id)."""
    token = await person(gw, officer, "police_officer", clearance=3, tier="police")
    body = {"relative_name": "张女士", "missing_person": "elderly", "case_number": "WX-2026-0107",
            "cameras": cameras, "start": start.isoformat(), "end": end.isoformat(), "hours": 1}
    out = await _post(gw, "/api/relative-grants", token, body)
    return out["token"], out["grant_id"]


async def trail(gw: Any, **where: str) -> list[AuditRow]:
    """The audit rows whose columns equal ``where`` (actor=, action=, resource=, decision=), in order."""
    query = select(AuditRow).order_by(AuditRow.seq)
    for column, value in where.items():
        query = query.where(getattr(AuditRow, column) == value)
    async with gw.db.session() as s:
        return list(await s.scalars(query))
