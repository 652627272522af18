"""The one small interface every adapter implements (DESIGN.md, "adapters/").

An adapter lists channels, opens a channel's live stream as access units, and optionally
controls PTZ, honours keyframe requests, and answers record queries / playback. It reports
channel changes through its :class:`AdapterContext`; it never talks to an egress.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.media import AccessUnit
from gateway.policy import Decision, InternalAccess


class NotSupported(Exception):
    """The adapter (or this channel) cannot do what was asked."""


@dataclass(slots=True)
class Channel:
    """A live video channel as an adapter discovered it (not the registry's camera record)."""

    id: str
    name: str
    adapter: str
    online: bool = False
    ptz: bool = False
    codec: str | None = None
    civil_code: str | None = None
    parent: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PtzCommand:
    """Pan/tilt/zoom speeds in -1.0…1.0 (0 = stop that axis); or a preset action."""

    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    focus: float = 0.0
    iris: float = 0.0
    preset: int | None = None
    preset_action: str | None = None  # "goto" | "set" | "delete"

    @property
    def is_stop(self) -> bool:
        return self.preset is None and not any((self.pan, self.tilt, self.zoom, self.focus, self.iris))


@dataclass(frozen=True, slots=True)
class RecordRange:
    channel_id: str
    start: datetime
    end: datetime
    source: str = "device"


class AdapterContext(Protocol):
    """What the gateway lends an adapter: the channel registry and the event bus."""

    def channel_seen(self, channel: Channel) -> bool: ...  # False: another source holds this ID
    def channel_removed(self, channel_id: str) -> None: ...
    def channel_state(self, channel_id: str, online: bool, reason: str | None = None) -> None: ...
    def publish(self, event: Any) -> None: ...


class Adapter(ABC):
    kind: str = "adapter"

    def __init__(self) -> None:
        self.ctx: AdapterContext | None = None

    async def start(self, ctx: AdapterContext) -> None:
        self.ctx = ctx

    async def stop(self) -> None:
        """Release sockets and tasks."""

    @abstractmethod
    def channels(self) -> list[Channel]: ...

    def owns(self, channel_id: str) -> bool:
        return any(ch.id == channel_id for ch in self.channels())

    @abstractmethod
    def open(self, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        """Live access units until the source ends (return) or fails (raise)."""

    async def ptz(self, channel_id: str, command: PtzCommand) -> None:
        raise NotSupported(f"{self.kind} channels have no PTZ")

    async def request_keyframe(self, channel_id: str) -> bool:
        """Ask the source for an IDR now; False when the source cannot (e.g. RTSP)."""
        return False

    async def query_records(self, channel_id: str, start: datetime, end: datetime) -> list[RecordRange]:
        raise NotSupported(f"{self.kind} channels keep no recordings")

    def open_playback(
        self, access: Decision | InternalAccess, channel_id: str, start: datetime, end: datetime, speed: float = 1.0
    ) -> AsyncIterator[AccessUnit]:
        """The device's own recordings of [start, end): ``access`` is the gate's VIEW_PLAYBACK decision
        covering that range (checked before any request goes to the device)."""
        raise NotSupported(f"{self.kind} channels have no playback")
