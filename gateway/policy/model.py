"""Who asks, for what, on which resource, over which egress and time window; and the answer.

An :class:`AccessRequest` is the only thing the gate reads. A :class:`Decision` that allows is a
capability: only the gate mints one (:func:`mint`), it names the camera, action, window and expiry of
the request it answers, and it is what a stream reader, a playback opener or an export requires."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol


class Action(StrEnum):
    LIST = "list"
    VIEW_LIVE = "view_live"
    VIEW_PLAYBACK = "view_playback"
    EXPORT = "export"  # export / copy
    PULL_STREAM = "pull_stream"  # machine pull (gRPC)
    PTZ = "ptz"
    MANAGE = "manage"


LIVE = frozenset({Action.VIEW_LIVE, Action.PULL_STREAM})
PLAYBACK = frozenset({Action.VIEW_PLAYBACK})
RECORDED = frozenset({Action.VIEW_PLAYBACK, Action.EXPORT})  # footage: always asked with its time window
EGRESSES = frozenset({"http", "whep", "grpc", "sip", "export", "events", "internal"})


class AccessRequestError(ValueError):
    """A request the gate cannot be asked: the caller built it wrong (a bug, never "no limit")."""


@dataclass(frozen=True, slots=True)
class Subject:
    """An authenticated caller: a human user, a machine client, or an API token."""

    id: str
    kind: str = "user"  # "user" | "client" | "token"
    name: str = ""
    roles: frozenset[str] = frozenset()
    unit: str | None = None
    district: str | None = None
    clearance: int = 0  # highest security level this subject may see
    tier: str = "sharing"  # "sharing" | "police" | "emergency"
    session: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str  # "camera" | "system" | "unit" | "recording" | "audit" | "policy" | …
    id: str
    unit: str | None = None
    district: str | None = None
    security_level: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A span of recorded footage, both ends timezone-aware, start before end."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.start, datetime) or not isinstance(self.end, datetime):
            raise AccessRequestError("window: start and end must be datetimes")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise AccessRequestError("window: start and end must carry a time zone")
        if self.end <= self.start:
            raise AccessRequestError("window: end must be after start")

    def within(self, start: datetime | None, end: datetime | None) -> bool:
        """True if this window lies inside [start, end] (an open side of the grant is unbounded)."""
        return (start is None or self.start >= start) and (end is None or self.end <= end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


_NO_DETAIL: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """Everything the gate decides on. Built by one function per egress (``gateway.policy.access``).

    ``on_behalf_of`` is a narrowing identity (a user token presented under a platform's certificate):
    the gate allows only what both may do. ``detail`` goes to the audit record only."""

    subject: Subject
    action: Action
    resource: Resource
    egress: str
    window: TimeWindow | None = None
    request_id: str | None = None
    on_behalf_of: Subject | None = None
    quiet: bool = False  # list filtering: allows are counted, not written one by one
    can_mask: bool = False  # the egress applies privacy masks itself
    now: datetime | None = None
    detail: Mapping[str, Any] = field(default_factory=lambda: _NO_DETAIL)

    def __post_init__(self) -> None:
        if not isinstance(self.subject, Subject) or not isinstance(self.resource, Resource):
            raise AccessRequestError("subject and resource must be Subject and Resource")
        if not isinstance(self.action, Action):
            raise AccessRequestError(f"action: expected an Action, got {self.action!r}")
        if self.egress not in EGRESSES:
            raise AccessRequestError(f"egress: expected one of {sorted(EGRESSES)}, got {self.egress!r}")
        if self.window is not None and not isinstance(self.window, TimeWindow):
            raise AccessRequestError("window: expected a TimeWindow")
        if self.resource.kind == "camera":
            if self.action in RECORDED and self.window is None:
                raise AccessRequestError(f"{self.action}: recorded video is asked for with its time window")
            if self.action not in RECORDED and self.window is not None:
                raise AccessRequestError(f"{self.action}: only recorded video has a time window")

    @property
    def session_id(self) -> str | None:
        return self.subject.session


_GATE_MINT = object()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    grant_id: str | None = None
    flags: frozenset[str] = frozenset()  # e.g. "emergency", "watermark", "review"
    obligations: dict[str, Any] = field(default_factory=dict)  # e.g. watermark text
    request: AccessRequest | None = None
    expires: datetime | None = None  # the grant's or emergency's expiry; None: as long as the session
    _mint: object = field(default=None, init=False, repr=False, compare=False)  # set by mint() alone

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def is_capability(self) -> bool:
        return self.allowed and self._mint is _GATE_MINT and self.request is not None

    @property
    def camera(self) -> str | None:
        return self.request.resource.id if self.request and self.request.resource.kind == "camera" else None

    @property
    def action(self) -> Action | None:
        return self.request.action if self.request else None

    @property
    def window(self) -> TimeWindow | None:
        return self.request.window if self.request else None


def mint(decision: Decision, request: AccessRequest) -> Decision:
    """The gate's seal on its answer to ``request``; only the gate calls this. The seal is not a
    constructor argument, so ``dataclasses.replace`` of a minted decision yields an unsealed one."""
    minted = Decision(decision.allowed, decision.reason, decision.grant_id, decision.flags, decision.obligations,
                      request, decision.expires)
    object.__setattr__(minted, "_mint", _GATE_MINT)
    return minted


@dataclass(frozen=True, slots=True)
class InternalAccess:
    """A reader the gateway opens for itself (recording, health analysis, relaying, tests): named, never a
    path for a person or a platform."""

    purpose: str


class CapabilityError(PermissionError):
    """A reader or opener was asked for without an allowing decision that covers it."""


def require(access: Decision | InternalAccess, camera: str, actions: frozenset[Action],
            window: tuple[datetime, datetime] | None = None, now: datetime | None = None) -> None:
    """Check, where a reader is added, that ``access`` entitles it: a minted, unexpired decision for
    this camera, one of ``actions`` and (for recorded video) a window holding ``window``; or an
    explicit internal reader."""
    if isinstance(access, InternalAccess):
        if not access.purpose:
            raise CapabilityError("an internal reader must say what it is for")
        return
    if not isinstance(access, Decision) or not access.is_capability:
        raise CapabilityError("a stream reader needs an allowing decision from the policy gate")
    if access.camera != camera:
        raise CapabilityError(f"the decision is for camera {access.camera!r}, not {camera!r}")
    if access.action not in actions:
        raise CapabilityError(f"the decision allows {access.action}, not {sorted(actions)}")
    if access.expires is not None and (now or datetime.now(UTC)) >= access.expires:
        raise CapabilityError("the decision has expired")
    if window is not None and (access.window is None or not TimeWindow(*window).within(access.window.start,
                                                                                         access.window.end)):
        raise CapabilityError("the decision does not cover that time range")


class PolicyGate(Protocol):
    async def authorize(self, request: AccessRequest) -> Decision: ...
