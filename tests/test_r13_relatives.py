"""R13 (WX 25): a police officer grants a relative time-limited, view-only access to named cameras;
the relative watches (watermarked) but cannot export, pull a stream or move the camera."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from gateway.policy import Action
from gateway.policy.workflows import Refused

from .test_policy_support import parts, policy_gateway, user

pytestmark = pytest.mark.asyncio


async def test_r13_relative_can_view_cannot_export_or_pull(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, flows, gate = parts(gw)
    officer = await user(gw, "li", "police_officer", clearance=3, tier="police")
    operator = await user(gw, "op", "wall_operator", clearance=3)
    now = datetime.now(UTC)
    body = {"relative_name": "Zhang Min", "missing_person": "elderly", "case_number": "WX-2026-7",
            "cameras": ["cam-a"], "start": (now - timedelta(hours=3)).isoformat(), "end": now.isoformat(), "hours": 2}
    with pytest.raises(Refused, match="only police officers"):
        await flows.grant_relative(operator, body)
    row, token = await flows.grant_relative(officer, body)
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            me = await resp.json()
        assert resp.status == 200 and me["roles"] == ["relative"]
        async with http.get(f"{base}/api/recordings/cam-a/ranges", headers={"Authorization": f"Bearer {token}"}) as r:
            timeline = await r.json()  # what the wall overlays while the relative plays a recording back
        assert r.status == 200 and timeline["watermark"].startswith(row.id + " ")
    relative = await identity.authenticate(token, None)
    cam_a = gw.camera_resource("cam-a")
    for action in (Action.VIEW_LIVE, Action.VIEW_PLAYBACK):
        decision = await gate.authorize(relative, action, cam_a)
        assert decision.allowed and decision.flags == {"watermark"}
        assert decision.obligations["watermark"].startswith(row.id + " ")
    for action in (Action.EXPORT, Action.PULL_STREAM, Action.PTZ, Action.MANAGE):
        denied = await gate.authorize(relative, action, cam_a)
        assert not denied and "no copying" in denied.reason
    assert not await gate.authorize(relative, Action.VIEW_LIVE, gw.camera_resource("cam-b"))  # not in the grant
    later = {"now": now + timedelta(hours=2, minutes=1)}
    assert not await gate.authorize(relative, Action.VIEW_LIVE, cam_a, later)  # the grant expired
