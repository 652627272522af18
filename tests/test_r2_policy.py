"""R2 (QD 13): security level vs clearance, platform tier, unit scoping, default deny with a reason,
privacy masks never leaked, separation of duties; the gate is asked only with a typed AccessRequest
and answers with a capability that stream readers check; a narrowing identity only narrows; and a
property: no sequence of grants lets a subject act outside the cameras, actions and time ranges
it was granted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import dataclasses
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from gateway.media import AccessUnit, Stream
from gateway.policy import (LIVE, RECORDED, AccessRequest, AccessRequestError, Action, CapabilityError, Decision,
                            InternalAccess, Resource, Subject, TimeWindow, subject_access)
from gateway.policy.gate import TieredGate
from gateway.policy.grants import Emergency, Grant

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PAST = (NOW - timedelta(hours=2), NOW - timedelta(hours=1))


class ListAudit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def record(self, **kw: Any) -> None:
        self.records.append(kw)


def cam(cid: str, level: int = 1, unit: str = "u-transport", **attrs: Any) -> Resource:
    return Resource("camera", cid, unit, "d-south", level, attrs)


def ask(subject: Subject, action: Action, resource: Resource, **kw: Any) -> AccessRequest:
    return subject_access(subject, action, resource, "http", **kw)


@pytest.mark.asyncio
async def test_r2_clearance_tier_unit_and_default_deny_every_decision_audited() -> None:
    audit = ListAudit()
    gate = TieredGate(audit)
    op = Subject("user:op", roles=frozenset({"wall_operator"}), clearance=2)
    low = await gate.authorize(ask(op, Action.VIEW_LIVE, cam("c1", level=3)))
    assert not low and "clearance 2 is below security level 3" in low.reason
    chief = Subject("user:chief", roles=frozenset({"police_chief"}), clearance=5, tier="sharing")
    tier = await gate.authorize(ask(chief, Action.VIEW_LIVE, cam("c1", level=3)))
    assert not tier and "sharing platform tier" in tier.reason
    admin = Subject("user:adm", roles=frozenset({"department_admin"}), unit="u-housing", clearance=2)
    assert not await gate.authorize(ask(admin, Action.MANAGE, cam("c1")))
    assert await gate.authorize(ask(admin, Action.MANAGE, cam("c2", unit="u-housing")))
    nobody = await gate.authorize(ask(Subject("user:x"), Action.VIEW_LIVE, cam("c1", level=0)))
    assert not nobody and nobody.reason
    assert not await gate.authorize(ask(op, Action.EXPORT, cam("c1"), window=PAST))
    masks = [[0, 0, 0.5, 0.5]]
    masked = await gate.authorize(AccessRequest(op, Action.VIEW_LIVE, cam("c1", privacy_masks=masks), "http"))
    assert not masked and masked.reason == "privacy mask zones apply; this egress cannot mask yet"
    masking = AccessRequest(op, Action.VIEW_LIVE, cam("c1", privacy_masks=masks), "http", can_mask=True)
    assert await gate.authorize(masking)
    assert [r["decision"] for r in audit.records] == ["deny", "deny", "deny", "allow", "deny", "deny", "deny", "allow"]
    assert all(r["reason"] for r in audit.records)
    export = audit.records[5]  # the export attempt is audited with the exact footage range it asked for
    assert export["action"] == "export" and export["extra"]["start"] == PAST[0].isoformat()
    assert export["extra"]["end"] == PAST[1].isoformat() and export["extra"]["egress"] == "http"


@pytest.mark.asyncio
async def test_r2_separation_of_duties_and_quiet_list_decisions_aggregated() -> None:
    audit = ListAudit()
    gate = TieredGate(audit)
    trail = Resource("audit", "trail")
    sysadmin = Subject("user:root", roles=frozenset({"system_admin"}), clearance=9)
    token = Subject("token:abc", kind="token", roles=frozenset({"system_admin", "wall_operator"}), clearance=9)
    auditor = Subject("user:aud", roles=frozenset({"auditor"}), clearance=1)
    assert not await gate.authorize(ask(sysadmin, Action.LIST, trail))
    assert not await gate.authorize(ask(token, Action.LIST, trail))
    assert await gate.authorize(ask(token, Action.EXPORT, cam("c1", level=5), window=PAST))  # service identity
    assert await gate.authorize(ask(auditor, Action.LIST, trail))
    assert not await gate.authorize(ask(auditor, Action.MANAGE, Resource("policy", "rules")))
    audit.records.clear()
    op = Subject("user:op", roles=frozenset({"wall_operator"}), clearance=2)
    for i in range(50):
        await gate.authorize(ask(op, Action.LIST, cam(f"c{i}", level=i % 4), quiet=True))
    assert audit.records == []  # quiet decisions, allows and denies alike, wait for the aggregate
    await gate.flush()
    totals = {r["decision"]: r["extra"]["aggregate"] for r in audit.records}
    assert totals == {"allow": 38, "deny": 12}  # level-3 cameras are beyond clearance 2
    assert all(r["actor"] == op.id and r["action"] == "list" and r["reason"] for r in audit.records)


def test_r2_recorded_request_without_window_is_a_construction_error() -> None:
    op = Subject("user:op", roles=frozenset({"wall_operator"}), clearance=2)
    for action in RECORDED:
        with pytest.raises(AccessRequestError, match="time window"):
            AccessRequest(op, action, cam("c1"), "http")
        with pytest.raises(AccessRequestError, match="time window"):
            subject_access(op, action, cam("c1"), "export")
        assert AccessRequest(op, action, cam("c1"), "http", TimeWindow(*PAST)).window == TimeWindow(*PAST)
    with pytest.raises(AccessRequestError, match="only recorded video"):
        AccessRequest(op, Action.VIEW_LIVE, cam("c1"), "http", TimeWindow(*PAST))
    with pytest.raises(AccessRequestError, match="time zone"):
        TimeWindow(PAST[0].replace(tzinfo=None), PAST[1])
    with pytest.raises(AccessRequestError, match="after start"):
        TimeWindow(PAST[1], PAST[0])
    with pytest.raises(AccessRequestError, match="egress"):
        AccessRequest(op, Action.VIEW_LIVE, cam("c1"), "ftp")
    with pytest.raises(AccessRequestError, match="action"):
        AccessRequest(op, "view_live", cam("c1"), "http")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_r2_gate_refuses_anything_but_an_access_request() -> None:
    audit = ListAudit()
    gate = TieredGate(audit)
    token = Subject("token:abc", kind="token", roles=frozenset({"system_admin"}), clearance=9)
    lookalike = SimpleNamespace(subject=token, action=Action.VIEW_LIVE, resource=cam("c1"), egress="http", window=None,
                                request_id=None, on_behalf_of=None, quiet=False, can_mask=False, now=None, detail={})
    for wrong in (lookalike, {"subject": token, "action": Action.VIEW_LIVE, "resource": cam("c1")},
                  (token, Action.VIEW_LIVE, cam("c1")), None):
        with pytest.raises(AccessRequestError, match="takes an AccessRequest"):
            await gate.authorize(wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await gate.authorize(token, Action.VIEW_LIVE, cam("c1"), {})  # type: ignore[call-arg]
    assert audit.records == [] and gate.decisions == 0  # nothing was decided, nothing to audit
    assert await gate.authorize(ask(token, Action.VIEW_LIVE, cam("c1")))
    assert gate.decisions == 1 and len(audit.records) == 1


async def idle_source() -> AsyncIterator[AccessUnit]:
    await asyncio.Event().wait()  # a camera that never sends; the stream cancels it on close
    yield  # pragma: no cover


@pytest.mark.asyncio
async def test_r2_hub_refuses_a_reader_without_a_minted_decision() -> None:
    gate = TieredGate(ListAudit())
    op = Subject("user:op", roles=frozenset({"wall_operator"}), clearance=2)
    live = ask(op, Action.VIEW_LIVE, cam("cam-1"))
    minted = await gate.authorize(live)
    other_camera = await gate.authorize(ask(op, Action.VIEW_LIVE, cam("cam-2")))
    ptz = await gate.authorize(ask(op, Action.PTZ, cam("cam-1")))
    denied = await gate.authorize(ask(op, Action.VIEW_LIVE, cam("cam-1", level=3)))
    officer = Subject("user:li", roles=frozenset({"police_officer"}), clearance=0, tier="police")
    real_now = datetime.now(UTC)  # the reader checks expiry against the clock, so the grant lapsed an hour ago
    gate.grants["g1"] = Grant("g1", "retrieval", frozenset({officer.id}), frozenset({"cam-1"}),
                              frozenset({Action.VIEW_LIVE}), None, None, real_now - timedelta(hours=1))
    expired = await gate.authorize(AccessRequest(officer, Action.VIEW_LIVE, cam("cam-1"), "http",
                                                 now=real_now - timedelta(hours=2)))
    assert minted.is_capability and other_camera.is_capability and ptz.is_capability
    assert expired.is_capability and expired.grant_id == "g1" and not denied.allowed
    forged = Decision(True, "looks right", request=live)
    stream = Stream("cam-1", idle_source, linger=0)
    refused = {"a hand-built decision": (forged, "allowing decision from the policy gate"),
               "another camera's decision": (other_camera, "not 'cam-1'"),
               "a PTZ decision": (ptz, "allows ptz"),
               "a minted deny": (denied, "allowing decision from the policy gate"),
               "an unnamed internal reader": (InternalAccess(""), "what it is for"),
               "an expired decision": (expired, "expired"),
               "a minted decision retargeted with replace()": (
                   dataclasses.replace(other_camera, request=live), "allowing decision from the policy gate"),
               "no decision at all": (None, "allowing decision from the policy gate")}
    for what, (access, message) in refused.items():
        with pytest.raises(CapabilityError, match=message):
            stream.subscribe(access, what)  # type: ignore[arg-type]
    assert stream.readers == set() and not stream.running  # no reader was added, no ingest started
    reader = stream.subscribe(minted, "allowed viewer")
    internal = stream.subscribe(InternalAccess("test"), "recorder")
    assert stream.readers == {reader, internal}
    await stream.close()


@pytest.mark.asyncio
async def test_r2_narrowing_identity_only_narrows() -> None:
    audit = ListAudit()
    gate = TieredGate(audit)
    platform = Subject("client:city", kind="client", roles=frozenset({"platform"}), clearance=3, tier="police")
    outsider = Subject("user:x", roles=frozenset({"auditor"}), clearance=3)  # may list, never view
    officer = Subject("user:li", roles=frozenset({"police_officer"}), clearance=3, tier="police")
    camera = cam("c1", level=2)

    def pull(subject: Subject, on_behalf_of: Subject) -> AccessRequest:
        return AccessRequest(subject, Action.VIEW_LIVE, camera, "grpc", on_behalf_of=on_behalf_of, now=NOW)

    assert gate.decide(AccessRequest(platform, Action.VIEW_LIVE, camera, "grpc")).allowed
    narrowed = await gate.authorize(pull(platform, outsider))
    assert not narrowed and narrowed.reason.startswith("on behalf of user:x:")
    assert not await gate.authorize(pull(outsider, platform))  # the certificate's own limits still hold
    both = await gate.authorize(pull(platform, officer))
    assert both.allowed and both.is_capability
    assert [r["decision"] for r in audit.records] == ["deny", "deny", "allow"]
    assert [r["extra"].get("on_behalf_of") for r in audit.records] == ["user:x", "client:city", "user:li"]
    # a user reaching the camera only through a grant narrows the platform's session to that grant's expiry
    guest = Subject("user:guest", roles=frozenset({"police_officer"}), clearance=0, tier="police")
    gate.grants["g1"] = Grant("g1", "retrieval", frozenset({guest.id}), frozenset({"c1"}),
                              frozenset({Action.VIEW_LIVE}), None, None, NOW + timedelta(minutes=30))
    via_grant = gate.decide(pull(platform, guest))
    assert via_grant.allowed and via_grant.expires == NOW + timedelta(minutes=30) and via_grant.grant_id == "g1"


# -- the property ------------------------------------------------------------------------------
CAMS = ["c0", "c1"]
ACTIONS = [Action.VIEW_LIVE, Action.VIEW_PLAYBACK, Action.EXPORT, Action.PULL_STREAM, Action.PTZ, Action.MANAGE]
EMERGENCY_ACTIONS = {Action.VIEW_LIVE, Action.VIEW_PLAYBACK, Action.EXPORT, Action.PULL_STREAM}
VIEW = {Action.VIEW_LIVE, Action.VIEW_PLAYBACK}
bound = st.none() | st.integers(-4, 2)  # hours from NOW; None leaves that side of the range open
grant_ranges = st.tuples(bound, bound).filter(lambda r: None in r or r[0] < r[1])
grants = st.lists(st.tuples(st.sampled_from(["retrieval", "relative"]), st.sets(st.sampled_from(CAMS), min_size=1),
                            st.sets(st.sampled_from(ACTIONS[:4]), min_size=1), grant_ranges, st.integers(-2, 3)),
                  min_size=1, max_size=5)
emergencies = st.lists(st.tuples(st.sets(st.sampled_from(CAMS)), st.integers(-2, 3)), max_size=3)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple], str, Action, tuple[int, int]]:
    """Grants and a request aimed at one of them: often its camera and action, and a footage window
    (hours from NOW) on its range's edges, an hour either way."""
    gs = draw(grants)
    _, cams, acts, (lo, hi), _ = draw(st.sampled_from(gs))
    camera = draw(st.sampled_from(sorted(cams)) | st.sampled_from(CAMS))
    action = draw(st.sampled_from(sorted(acts)) | st.sampled_from(ACTIONS))
    start = (-3 if lo is None else lo) + draw(st.integers(-1, 1))
    end = (1 if hi is None else hi) + draw(st.integers(-1, 1))
    return gs, camera, action, (start, max(end, start + 1))


def hours(h: int | None) -> datetime | None:
    return None if h is None else NOW + timedelta(hours=h)


def grant_covers(g: tuple, camera: str, action: Action, window: TimeWindow | None) -> bool:
    """The oracle: camera, action and expiry, then the footage range (recorded) or now (live)."""
    _, cams, acts, (lo, hi), expiry = g
    if camera not in cams or action not in acts or expiry <= 0:
        return False
    start, end = hours(lo), hours(hi)
    if window is not None:
        return (start is None or start <= window.start) and (end is None or window.end <= end)
    return (start is None or start <= NOW) and (end is None or NOW <= end)


@settings(max_examples=300, deadline=None)
@given(scenarios(), emergencies, st.sampled_from(["police_officer", "relative", "emergency_agency_user"]),
       st.integers(1, 3))
def test_r2_no_sequence_of_grants_exceeds_scope(scenario, ems, role, level) -> None:  # noqa: ANN001
    gs, camera, action, (first, last) = scenario
    gate = TieredGate(ListAudit())
    subject = Subject("user:s", roles=frozenset({role}), clearance=0, tier="sharing")  # the role alone reaches nothing
    for i, (kind, cams, actions, (lo, hi), expiry) in enumerate(gs):
        gate.grants[f"g{i}"] = Grant(f"g{i}", kind, frozenset({subject.id}), frozenset(cams), frozenset(actions),
                                     hours(lo), hours(hi), NOW + timedelta(hours=expiry))
    for i, (cams, expiry) in enumerate(ems):
        gate.emergencies[f"e{i}"] = Emergency(f"e{i}", "accident", frozenset(cams), frozenset(), frozenset(),
                                              NOW + timedelta(hours=expiry))
    window = TimeWindow(hours(first), hours(last)) if action in RECORDED else None
    decision = gate.decide(AccessRequest(subject, action, cam(camera, level=level), "http", window, now=NOW))
    assert decision.allowed or decision.reason
    usable = {f"g{i}": g for i, g in enumerate(gs)
              if (g[0] == "relative" and action in VIEW) or (g[0] == "retrieval" and role != "relative")}
    covering = {gid for gid, g in usable.items() if grant_covers(g, camera, action, window)}
    if decision.allowed and (decision.grant_id or "").startswith("g"):  # via a grant: that grant covers all of it
        assert decision.grant_id in covering, (decision, window)
    elif decision.allowed:  # otherwise only a live emergency covering the camera, for an emergency role
        assert role == "emergency_agency_user" and action in EMERGENCY_ACTIONS, decision
        assert (decision.grant_id or "").startswith("e") and "emergency" in decision.flags, decision
        cams, expiry = ems[int(decision.grant_id[1:])]
        assert camera in cams and expiry > 0, decision
    assert decision.allowed or not covering, (decision, covering)  # a covering grant is honoured
    via_relative_grant = decision.grant_id in usable and usable[decision.grant_id][0] == "relative"
    if decision.allowed and (role == "relative" or via_relative_grant):  # relatives view, never copy (R13)
        assert action in VIEW and "watermark" in decision.flags and decision.obligations["watermark"]
    if decision.allowed and action in LIVE and decision.grant_id in usable:  # live: only while now is in range
        lo, hi = usable[decision.grant_id][3]
        assert (lo is None or lo <= 0) and (hi is None or 0 <= hi), decision
