"""Who asks, for what, on which resource, and the answer (with a reason, always)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Action(StrEnum):
    LIST = "list"
    VIEW_LIVE = "view_live"
    VIEW_PLAYBACK = "view_playback"
    EXPORT = "export"  # export / copy
    PULL_STREAM = "pull_stream"  # machine pull (gRPC)
    PTZ = "ptz"
    MANAGE = "manage"


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
class Decision:
    allowed: bool
    reason: str
    grant_id: str | None = None
    flags: frozenset[str] = frozenset()  # e.g. "emergency", "watermark", "mask"
    obligations: dict[str, Any] = field(default_factory=dict)  # e.g. mask zones, watermark text

    def __bool__(self) -> bool:
        return self.allowed


class PolicyGate(Protocol):
    async def authorize(
        self, subject: Subject, action: Action, resource: Resource, context: dict[str, Any] | None = None
    ) -> Decision: ...


class AuthenticatedOnly:
    """The foundation's gate: any authenticated subject may do anything but manage policy."""

    async def authorize(
        self, subject: Subject, action: Action, resource: Resource, context: dict[str, Any] | None = None
    ) -> Decision:
        if not subject.id:
            return Decision(False, "not authenticated")
        return Decision(True, "authenticated")
