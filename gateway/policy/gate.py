"""The tiered policy gate (R2, R11–R13): default deny, a reason on every deny, every decision
audited. Roles give a baseline bounded by clearance and platform tier; grants extend it narrowly.

Audit granularity: every decision is one audit record, except those of requests marked ``quiet``
(list filtering, one call per row or per event): those are counted per (actor, action, verdict)
and written as one aggregate record when :meth:`TieredGate.flush` runs (every few seconds and at
stop). Static API tokens (``kind == "token"``) are the service/bootstrap identity: they may do
everything to cameras and management, but never read the audit trail (separation of duties)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gateway.audit import AuditSink

from .grants import Emergency, Grant
from .model import Action, AccessRequest, AccessRequestError, Decision, Resource, Subject, mint

A = Action
VIDEO = {A.VIEW_LIVE, A.VIEW_PLAYBACK, A.EXPORT, A.PULL_STREAM}
VIEW = {A.VIEW_LIVE, A.VIEW_PLAYBACK}
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "wall_operator": frozenset({A.LIST, A.VIEW_LIVE, A.VIEW_PLAYBACK, A.PTZ}),
    "police_officer": frozenset({A.LIST, A.VIEW_LIVE, A.VIEW_PLAYBACK}),
    "police_chief": frozenset({A.LIST, A.VIEW_LIVE, A.VIEW_PLAYBACK}),
    "department_admin": frozenset({A.LIST, A.VIEW_LIVE, A.VIEW_PLAYBACK, A.MANAGE}),  # own unit only
    "platform": frozenset({A.LIST, A.VIEW_LIVE, A.VIEW_PLAYBACK, A.PULL_STREAM, A.PTZ}),
    "system_admin": frozenset({A.LIST, A.MANAGE}),
    "auditor": frozenset({A.LIST}),
    "emergency_commander": frozenset({A.LIST}),
    "emergency_agency_user": frozenset({A.LIST}),
    "relative": frozenset(),
}
# Highest security level each platform tier may reach (R2, QD 13: graded, tiered permissions).
TIER_CEILING = {"sharing": 2, "emergency": 3, "police": 5}
EMERGENCY_ROLES = {"emergency_commander", "emergency_agency_user"}
EMERGENCY_ACTIONS = {A.LIST, A.VIEW_LIVE, A.VIEW_PLAYBACK, A.EXPORT, A.PULL_STREAM}  # never delete/alter
MASK_LIFTERS = {"police_chief"}
UNIT_SCOPED = {"department_admin"}
METRICS_READERS = {"system_admin", "auditor"}


class GrantTable(dict[str, Grant]):
    """Grants by id, indexed by subject so a decision looks only at the caller's own grants."""

    def __init__(self) -> None:
        super().__init__()
        self.by_subject: dict[str, dict[str, Grant]] = {}

    def __setitem__(self, gid: str, grant: Grant) -> None:
        self.pop(gid, None)
        super().__setitem__(gid, grant)
        for sid in grant.subjects:
            self.by_subject.setdefault(sid, {})[gid] = grant

    def __delitem__(self, gid: str) -> None:
        self.pop(gid)

    def pop(self, gid: str, *default: Grant | None) -> Grant | None:  # type: ignore[override]
        grant = super().pop(gid, *default)
        for sid in grant.subjects if grant is not None else ():
            self.by_subject.get(sid, {}).pop(gid, None)
        return grant


class TieredGate:
    def __init__(self, audit: AuditSink, zone: ZoneInfo = ZoneInfo("Asia/Shanghai")) -> None:
        self.audit, self.zone = audit, zone  # the zone watermarks show their time in
        self.grants = GrantTable()
        self.emergencies: dict[str, Emergency] = {}
        self.decisions = 0
        self._quiet: dict[tuple[str, str, str | None, bool], int] = {}

    # -- the gate -----------------------------------------------------------------------
    async def authorize(self, request: AccessRequest) -> Decision:
        if not isinstance(request, AccessRequest):
            raise AccessRequestError("the gate takes an AccessRequest")
        decision = mint(self.decide(request), request)
        self.decisions += 1
        subject = request.subject
        if request.quiet:  # list filtering: counted, recorded in aggregate
            key = (subject.id, str(request.action), subject.address, decision.allowed)
            self._quiet[key] = self._quiet.get(key, 0) + 1
        else:
            await self.audit.record(
                actor=subject.id, action=str(request.action), resource=f"{request.resource.kind}:{request.resource.id}",
                decision="allow" if decision.allowed else "deny", reason=decision.reason, address=subject.address,
                request_id=request.request_id, extra=_audit_extra(request, decision),
            )
        return decision

    async def flush(self) -> None:
        """Write the aggregate records for quiet (list-filtering) decisions."""
        pending, self._quiet = self._quiet, {}
        for (actor, action, address, allowed), count in pending.items():
            verdict = "allow" if allowed else "deny"
            await self.audit.record(actor=actor, action=action, resource="camera:*", decision=verdict,
                                    reason=f"{count} list-filtering decisions: {verdict}", address=address,
                                    extra={"aggregate": count})

    def decide(self, request: AccessRequest) -> Decision:
        """Pure and in-memory: no I/O, so it can be property-tested and benchmarked. A narrowing
        identity (``on_behalf_of``) must be allowed too: the answer is the stricter of the two."""
        if not isinstance(request, AccessRequest):
            raise AccessRequestError("the gate takes an AccessRequest")
        decision = self._decide(request.subject, request)
        if decision.allowed and request.on_behalf_of is not None:
            # a person's counterpart of a machine's stream pull is watching it live
            asked = replace(request, action=A.VIEW_LIVE) if request.action is A.PULL_STREAM else request
            narrow = self._decide(request.on_behalf_of, asked)
            if not narrow.allowed:
                return Decision(False, f"on behalf of {request.on_behalf_of.id}: {narrow.reason}")
            if narrow.expires is not None and (decision.expires is None or narrow.expires < decision.expires):
                return narrow
        return decision

    def _decide(self, subject: Subject, request: AccessRequest) -> Decision:
        if not subject.id:
            return Decision(False, "not authenticated")
        action, resource, roles = request.action, request.resource, subject.roles
        if resource.kind == "audit":
            if "auditor" in roles:
                return Decision(True, "auditors read the audit trail (R18)")
            return Decision(False, "only auditors read the audit trail; system administrators cannot (separation of duties)")
        if resource.kind == "policy" and action is A.MANAGE and "auditor" in roles:
            return Decision(False, "auditors cannot change policy (separation of duties)")
        if action in VIDEO and resource.attrs.get("privacy_masks") and not (MASK_LIFTERS & roles) \
                and not request.can_mask:
            return Decision(False, "privacy mask zones apply; this egress cannot mask yet")
        if subject.kind == "token":
            return Decision(True, "static API token: service identity")
        if resource.kind == "metrics":
            if METRICS_READERS & roles:
                return Decision(True, "platform operators read the metrics")
            return Decision(False, "metrics name cameras and streams: only system administrators and auditors read them")
        now = request.now or datetime.now(UTC)
        base = self._by_role(subject, action, resource)
        if base.allowed:
            return base
        relative = "relative" in roles
        for grant in self._grants_for(subject):
            if (relative or grant.kind == "relative") and (grant.kind != "relative" or action not in VIEW):
                continue  # relatives view, never copy, whatever a grant says (R13)
            if grant.covers(subject.id, resource.id, action, request.window, now):
                if grant.kind == "relative":
                    return Decision(True, "relatives' view-only grant (R13, WX 25)", grant.id, frozenset({"watermark"}),
                                    {"watermark": f"{grant.id} {now.astimezone(self.zone):%Y-%m-%d %H:%M %Z}"},
                                    expires=grant.expires)
                return Decision(True, "approved retrieval grant (R11)", grant.id, expires=grant.expires)
        if relative:
            return Decision(False, "relatives may only view the cameras and times of their grant; "
                                   "no copying, download, stream pull or PTZ (WX 25)")
        if EMERGENCY_ROLES & roles and action in EMERGENCY_ACTIONS:
            for em in self.emergencies.values():
                if em.expires > now and em.covers(resource.id, resource.unit, resource.district):
                    return Decision(True, f"declared emergency {em.id} ({em.kind}) (R12, QD 23)", em.id,
                                    frozenset({"emergency", "review"}), {"review": em.id}, expires=em.expires)
            return Decision(False, "no declared emergency covers this camera")
        return base

    def _by_role(self, subject: Subject, action: Action, resource: Resource) -> Decision:
        unit_mismatch = bool(resource.unit) and resource.unit != subject.unit
        return role_decision(subject.roles, subject.clearance, subject.tier, subject.unit, action,
                             resource.security_level, unit_mismatch)

    def _grants_for(self, subject: Subject) -> Iterable[Grant]:
        return self.grants.by_subject.get(subject.id, {}).values()


def _audit_extra(request: AccessRequest, decision: Decision) -> dict[str, Any]:
    """What the audit record says beyond actor/action/resource: the egress, the exact window asked for,
    the grant and flags that decided it, the session and any narrowing identity."""
    extra: dict[str, Any] = {"egress": request.egress}
    if request.window is not None:
        extra["start"], extra["end"] = request.window.start.isoformat(), request.window.end.isoformat()
    for name, value in (("grant", decision.grant_id), ("flags", sorted(decision.flags)),
                        ("session", request.subject.session),
                        ("on_behalf_of", request.on_behalf_of and request.on_behalf_of.id)):
        if value:
            extra[name] = value
    extra.update(request.detail)
    return extra


@lru_cache(maxsize=65536)
def role_decision(roles: frozenset[str], clearance: int, tier: str, unit: str | None, action: Action,
                  level: int, unit_mismatch: bool) -> Decision:
    """The role baseline: a pure function of a few labels, so decisions are cached (W8)."""
    allowed_roles = sorted(r for r in roles if action in ROLE_ACTIONS.get(r, ()))
    if not allowed_roles:
        what = "copy or export footage" if action is A.EXPORT else action.value.replace("_", " ")
        hint = " without an approved retrieval request (R11)" if action is A.EXPORT else ""
        return Decision(False, f"roles {sorted(roles) or ['none']} may not {what}{hint}")
    if level > clearance:
        return Decision(False, f"clearance {clearance} is below security level {level} (R2)")
    ceiling = TIER_CEILING.get(tier, 0)
    if level > ceiling:
        return Decision(False, f"the {tier} platform tier reaches security level {ceiling}, this resource is level {level} (R2)")
    if all(r in UNIT_SCOPED for r in allowed_roles) and unit_mismatch:
        return Decision(False, f"department administrators act only within their own unit ({unit})")
    return Decision(True, f"role {allowed_roles[0]} may {action.value} up to level {min(clearance, ceiling)}")
