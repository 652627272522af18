"""Helpers for the policy, identity and audit tests (no tests here): a gateway with cheap argon2,
users created through the identity service, subjects obtained by logging in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp

from gateway.policy import Resource, Subject
from gateway.policy.web import STATE

FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 64}
PASSWORD = "correct horse battery"
CAMERAS = {  # camera id -> (unit, district, security level)
    "cam-a": ("u-transport", "d-south", 1),
    "cam-b": ("u-transport", "d-south", 1),
    "cam-c": ("u-housing", "d-north", 1),
    "cam-secret": ("u-police", "d-north", 4),
}


async def policy_gateway(make_gateway, db_url: str, **sections: Any):  # noqa: ANN001, ANN201
    identity = {**FAST_ARGON2, **sections.pop("identity", {})}
    gw = await make_gateway(storage={"url": db_url}, identity=identity, **sections)
    gw.resource_resolver = lambda cid: Resource("camera", cid, *CAMERAS.get(cid, (None, None, 0)))
    return gw


def parts(gw):  # noqa: ANN001, ANN201
    """(identity, workflows, gate) of a gateway."""
    return gw.app[STATE]


async def user(gw, name: str, *roles: str, **kw: Any) -> Subject:  # noqa: ANN001
    """Create a user and log in as them (with TOTP when the role needs it)."""
    identity, _, _ = parts(gw)
    secret = await identity.add_user(name, PASSWORD, list(roles), **kw)
    _, _, subject = await identity.login(name, PASSWORD, pyotp.TOTP(secret).now() if secret else None, "127.0.0.1")
    return subject


def request_body(cameras: list[str], action: str = "copy") -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"purpose": "judicial", "legal_basis": "Criminal Procedure Law art. 54", "case_number": "QD-2026-0042",
            "approval_document_name": "letter.pdf", "approval_document": "JVBERi0xLjQKJWR1bW15",
            "cameras": cameras, "start": (now - timedelta(hours=2)).isoformat(),
            "end": (now - timedelta(hours=1)).isoformat(), "action": action}


def window(body: dict[str, Any]) -> dict[str, Any]:
    """The gate context for reading exactly the requested footage range."""
    return {"start": datetime.fromisoformat(body["start"]), "end": datetime.fromisoformat(body["end"])}
