"""R12 (QD 23 ¶3, QD 13): a declared emergency lets emergency roles view, copy and retrieve inside its
scope only, never manage or delete; it announces itself to the wall, flags every decision for review,
ends by itself at expiry, and waits in the open-reviews list until signed off."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.audit.chain import AuditRow
from gateway.policy import RECORDED, Action, Decision, Resource, subject_access
from gateway.policy.workflows import Refused

from .test_policy_support import parts, policy_gateway, user

pytestmark = pytest.mark.asyncio


async def test_r12_emergency_allows_scope_denies_outside_expires_and_cannot_delete(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    _, flows, gate = parts(gw)
    commander = await user(gw, "zhou", "emergency_commander", clearance=3, tier="emergency")
    agent = await user(gw, "wu", "emergency_agency_user", clearance=3, tier="emergency")
    chief = await user(gw, "wang", "police_chief", clearance=5, tier="police")
    cam_a, cam_c = gw.camera_resource("cam-a"), gw.camera_resource("cam-c")
    now = datetime.now(UTC)
    footage = (now - timedelta(hours=1), now)

    async def ask(action: Action, camera: Resource = cam_a) -> Decision:
        return await gate.authorize(subject_access(agent, action, camera, "http",
                                                   window=footage if action in RECORDED else None))

    assert not await ask(Action.VIEW_LIVE)  # nothing declared yet
    assert not await ask(Action.EXPORT)
    with pytest.raises(Refused, match="only an emergency commander"):
        await flows.declare(agent, {"kind": "accident", "justification": "x", "districts": ["d-south"]})
    with gw.bus.subscribe("emergency.") as events:
        em = await flows.declare(commander, {"kind": "natural_disaster", "justification": "flooding at the south bridge",
                                             "districts": ["d-south"], "hours": 0.0005})
        declared = await asyncio.wait_for(events.get(), 5)
        assert declared.topic == "emergency.declared" and declared.emergency_id == em.id
        assert declared.scope_districts == ["d-south"] and declared.kind == "natural_disaster"
        for action in (Action.VIEW_LIVE, Action.VIEW_PLAYBACK, Action.EXPORT, Action.PULL_STREAM):
            decision = await ask(action)
            assert decision.allowed and "emergency" in decision.flags and decision.grant_id == em.id
            assert decision.is_capability
            assert decision.expires == gate.emergencies[em.id].expires  # its readers close when it ends
        for action in (Action.VIEW_LIVE, Action.EXPORT):
            outside = await ask(action, cam_c)
            assert not outside and "no declared emergency" in outside.reason
        assert not await ask(Action.MANAGE)  # never delete or alter
        ended = await asyncio.wait_for(events.get(), 10)  # ends by itself, nobody calls end()
        assert ended.topic == "emergency.ended" and ended.emergency_id == em.id and ended.reason == "expired"
    assert not await ask(Action.VIEW_LIVE)
    assert not await ask(Action.VIEW_PLAYBACK)
    async with gw.db.session() as s:
        flagged = list(await s.scalars(select(AuditRow).where(AuditRow.actor == agent.id, AuditRow.decision == "allow")
                                       .order_by(AuditRow.seq)))
    assert len(flagged) == 4 and all("emergency" in r.extra["flags"] for r in flagged)
    recorded = [(r.action, r.extra["start"], r.extra["end"]) for r in flagged if "start" in r.extra]
    assert recorded == [(a, footage[0].isoformat(), footage[1].isoformat()) for a in ("view_playback", "export")]
    assert [r.id for r in await flows.open_reviews()] == [em.id]
    with pytest.raises(Refused, match="cannot review their own"):
        await flows.review(replace(commander, roles=frozenset({"police_chief"})), em.id, {"notes": "ok"})
    await flows.review(chief, em.id, {"notes": "access matched the flood area"})
    assert await flows.open_reviews() == []
