"""R11 (QD 23, QD 24, WX 23, WX 24): retrieval needs two distinct officers, police-chief approval for
police requests, honours a manager's refusal, and yields a grant for exactly its scope and time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.audit.chain import AuditRow
from gateway.policy import AccessRequest, Action, Decision, Resource, Subject, TimeWindow, subject_access
from gateway.policy.workflows import Refused

from .test_policy_support import parts, policy_gateway, request_body, user, window

pytestmark = pytest.mark.asyncio


def footage(body: dict[str, Any]) -> tuple[datetime, datetime]:
    """Exactly the footage range a retrieval request asked for."""
    inside = window(body)
    return inside["start"], inside["end"]


async def _actions(gw, resource: str) -> list[tuple[str, str]]:  # noqa: ANN001
    async with gw.db.session() as s:
        rows = await s.scalars(select(AuditRow).where(AuditRow.resource == resource).order_by(AuditRow.seq))
        return [(r.action, r.decision) for r in rows]


async def test_r11_single_officer_request_refused(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    _, flows, gate = parts(gw)
    officer = await user(gw, "li", "police_officer", clearance=3, tier="police")
    chief = await user(gw, "wang", "police_chief", clearance=5, tier="police")
    body = request_body(["cam-a"])
    row = await flows.create_request(officer, body)
    with pytest.raises(Refused, match="needs a second officer"):
        await flows.approve(chief, row.id, {})
    denied = await gate.authorize(subject_access(officer, Action.EXPORT, gw.camera_resource("cam-a"), "export",
                                                 window=footage(body)))
    assert not denied and "without an approved retrieval request" in denied.reason
    assert await _actions(gw, f"retrieval:{row.id}") == [("retrieval.create", "allow"), ("retrieval.approve", "deny")]


async def test_r11_same_officer_twice_refused(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    _, flows, _ = parts(gw)
    officer = await user(gw, "li", "police_officer", clearance=3, tier="police")
    row = await flows.create_request(officer, request_body(["cam-a"]))
    with pytest.raises(Refused, match="two distinct officers"):
        await flows.confirm(officer, row.id)
    assert (await flows._load(row.id)).status == "awaiting_second_officer"


async def test_r11_police_request_without_chief_approval_refused(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    _, flows, _ = parts(gw)
    a = await user(gw, "li", "police_officer", clearance=3, tier="police")
    b = await user(gw, "zhao", "police_officer", clearance=3, tier="police")
    c = await user(gw, "sun", "police_officer", clearance=3, tier="police")
    row = await flows.create_request(a, request_body(["cam-a"]))
    await flows.confirm(b, row.id)
    with pytest.raises(Refused, match="police chief"):
        await flows.approve(c, row.id, {})
    assert (await flows._load(row.id)).status == "awaiting_approval"


async def test_r11_manager_refusal_honoured(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    _, flows, gate = parts(gw)
    a = await user(gw, "li", "police_officer", clearance=3, tier="police")
    b = await user(gw, "zhao", "police_officer", clearance=3, tier="police")
    chief = await user(gw, "wang", "police_chief", clearance=5, tier="police")
    other_manager = await user(gw, "chen", "department_admin", unit="u-housing", clearance=2)
    manager = await user(gw, "liu", "department_admin", unit="u-transport", clearance=2)
    body = request_body(["cam-a"])
    row = await flows.create_request(a, body)
    await flows.confirm(b, row.id)
    with pytest.raises(Refused, match="managing department"):
        await flows.refuse(other_manager, row.id, {"reason": "not ours"})
    refused = await flows.refuse(manager, row.id, {"reason": "no approval letter stamp"})
    assert refused.status == "refused" and refused.reason == "no approval letter stamp"
    with pytest.raises(Refused, match="refused"):
        await flows.approve(chief, row.id, {})
    assert not await gate.authorize(subject_access(a, Action.EXPORT, gw.camera_resource("cam-a"), "export",
                                                   window=footage(body)))


async def test_r11_approved_grant_allows_exactly_its_scope_and_expires(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    _, flows, gate = parts(gw)
    a = await user(gw, "li", "police_officer", clearance=3, tier="police")
    b = await user(gw, "zhao", "police_officer", clearance=3, tier="police")
    outsider = await user(gw, "sun", "police_officer", clearance=3, tier="police")
    chief = await user(gw, "wang", "police_chief", clearance=5, tier="police")
    body = request_body(["cam-a"], action="copy")
    row = await flows.create_request(a, body)
    with pytest.raises(Refused, match="needs a second officer"):
        await flows.approve(b, row.id, {})
    await flows.confirm(b, row.id)
    approved = await flows.approve(chief, row.id, {"hours": 1})
    cam_a, cam_b = gw.camera_resource("cam-a"), gw.camera_resource("cam-b")
    start, end = footage(body)
    inside, minute = (start, end), timedelta(minutes=1)

    async def export(officer: Subject, camera: Resource, window: tuple[datetime, datetime] = inside,
                     now: datetime | None = None) -> Decision:
        return await gate.authorize(AccessRequest(officer, Action.EXPORT, camera, "export", TimeWindow(*window), now=now))

    for officer in (a, b):
        decision = await export(officer, cam_a)
        assert decision.allowed and decision.grant_id == approved.grant_id and decision.window == TimeWindow(*inside)
        assert decision.expires == gate.grants[approved.grant_id].expires
        part = await export(officer, cam_a, (start + minute, end - minute))  # any part of the range
        assert part.allowed and part.grant_id == approved.grant_id
    assert not await export(a, cam_b)  # another camera
    assert not await export(outsider, cam_a)  # not on the request
    assert not await export(a, cam_a, (start - minute, end))  # starts before the range
    assert not await export(a, cam_a, (start, end + minute))  # ends after it
    assert not await export(a, cam_a, (end, end + timedelta(hours=1)))  # wholly after it
    grant = gate.grants[approved.grant_id]
    assert not await export(a, cam_a, now=grant.expires + timedelta(seconds=1))  # expired
    assert await _actions(gw, f"retrieval:{row.id}") == [
        ("retrieval.create", "allow"), ("retrieval.approve", "deny"), ("retrieval.confirm", "allow"),
        ("retrieval.approve", "allow")]


async def test_r11_missing_fields_refused_with_the_field(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    _, flows, _ = parts(gw)
    officer = await user(gw, "li", "police_officer", clearance=3, tier="police")
    for missing in ("legal_basis", "case_number", "approval_document", "cameras"):
        body = request_body(["cam-a"])
        del body[missing]
        with pytest.raises(Refused) as err:
            await flows.create_request(officer, body)
        assert err.value.field == missing
    viewer = await user(gw, "op", "wall_operator", clearance=3)
    with pytest.raises(Refused, match="only police officers and department staff"):
        await flows.create_request(viewer, request_body(["cam-a"]))
