"""R13 (WX 25): a police officer grants a relative time-limited, view-only access to named cameras;
the relative watches (watermarked) the granted footage range, and live only while now lies inside it,
but cannot export, pull a stream or move the camera."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from gateway.policy import RECORDED, AccessRequest, Action, Decision, Resource, TimeWindow
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
            "cameras": ["cam-a"], "start": (now - timedelta(hours=3)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(), "hours": 2}
    with pytest.raises(Refused, match="only police officers"):
        await flows.grant_relative(operator, body)
    row, token = await flows.grant_relative(officer, body)
    base = f"http://127.0.0.1:{gw.http_port}"
    bearer = {"Authorization": f"Bearer {token}"}
    timeline_url = f"{base}/api/recordings/cam-a/ranges"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/me", headers=bearer) as resp:
            me = await resp.json()
        assert resp.status == 200 and me["roles"] == ["relative"]
        last_hour = {"start": f"{now.timestamp() - 3600:.0f}", "end": f"{now.timestamp():.0f}"}  # as the wall asks
        async with http.get(timeline_url, params=last_hour, headers=bearer) as r:
            timeline = await r.json()  # what the wall overlays while the relative plays a recording back
        assert r.status == 200 and timeline["watermark"].startswith(row.id + " ")
        async with http.get(timeline_url, headers=bearer) as r:  # the default last 24 hours: beyond the grant
            assert r.status == 403 and "relatives may only view" in (await r.json())["message"]
    relative = await identity.authenticate(token, None)
    cam_a = gw.camera_resource("cam-a")
    seen = (now - timedelta(hours=2), now - timedelta(hours=1))

    async def ask(action: Action, camera: Resource = cam_a, window: tuple[datetime, datetime] = seen,
                  at: datetime | None = None) -> Decision:
        return await gate.authorize(AccessRequest(relative, action, camera, "http",
                                                  TimeWindow(*window) if action in RECORDED else None, now=at))

    for action in (Action.VIEW_LIVE, Action.VIEW_PLAYBACK):
        decision = await ask(action)
        assert decision.allowed and decision.flags == {"watermark"} and decision.grant_id == row.id
        assert decision.obligations["watermark"].startswith(row.id + " ")
    for action in (Action.EXPORT, Action.PULL_STREAM, Action.PTZ, Action.MANAGE):
        denied = await ask(action)
        assert not denied and "no copying" in denied.reason
    assert not await ask(Action.VIEW_LIVE, gw.camera_resource("cam-b"))  # not in the grant
    assert not await ask(Action.VIEW_PLAYBACK, window=(now - timedelta(hours=4), now - timedelta(hours=2)))  # before it
    past_range = now + timedelta(hours=1, minutes=30)  # the grant still runs; its footage range has ended
    assert not await ask(Action.VIEW_LIVE, at=past_range)
    assert await ask(Action.VIEW_PLAYBACK, at=past_range)
    later = now + timedelta(hours=2, minutes=1)
    assert not await ask(Action.VIEW_PLAYBACK, at=later)  # the grant expired
