"""Typed events published on the bus. Each has a dotted topic; subscribers match by prefix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
import time
from typing import Any, ClassVar

from gateway.media.hub import parse_key

EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass
class Event:
    topic: ClassVar[str] = "event"
    camera_field: ClassVar[str] = "channel_id"  # the field naming the camera this event is about, if it has one
    time: float = field(default_factory=time.time, kw_only=True)
    node: str = field(default="", kw_only=True)  # publishing node, filled by the bus

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        EVENT_TYPES[cls.topic] = cls

    def camera(self) -> str | None:
        """The camera this event is about, if any: whoever passes events on asks the gate about it."""
        value = getattr(self, self.camera_field, None)
        return parse_key(value)[0] if value else None

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, **asdict(self)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Event:
        cls = EVENT_TYPES[data["topic"]]
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ChannelAdded(Event):
    topic: ClassVar[str] = "channel.added"
    channel_id: str
    name: str
    adapter: str


@dataclass
class ChannelRemoved(Event):
    topic: ClassVar[str] = "channel.removed"
    channel_id: str


@dataclass
class ChannelState(Event):
    """A channel went online or offline (R15 health)."""

    topic: ClassVar[str] = "channel.state"
    channel_id: str
    online: bool
    reason: str | None = None


@dataclass
class ChannelConflict(Event):
    """A second source reported a channel ID another source already holds; the holder keeps it."""

    topic: ClassVar[str] = "channel.conflict"
    channel_id: str
    holder: str  # "adapter" or "adapter/device" of the source that keeps the channel
    claimant: str  # the source whose claim was refused


@dataclass
class StreamState(Event):
    topic: ClassVar[str] = "stream.state"
    camera_field: ClassVar[str] = "key"
    key: str
    running: bool
    reason: str | None = None


@dataclass
class StreamStatsEvent(Event):
    topic: ClassVar[str] = "stream.stats"
    camera_field: ClassVar[str] = "key"
    key: str
    fps: float
    bitrate: float
    readers: int
    skips: int


@dataclass
class Alarm(Event):
    """A device alarm (GB/T 28181 Alarm notify and the like)."""

    topic: ClassVar[str] = "alarm"
    channel_id: str
    kind: str
    priority: int = 4
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MobilePosition(Event):
    """Where a mobile device (or a channel of one) reports it is (GB/T 28181 MobilePosition notify)."""

    topic: ClassVar[str] = "position"
    channel_id: str
    longitude: float
    latitude: float
    device: str = ""
    reported_at: str = ""  # the device's own time, as it sent it (its local time)
    speed: float | None = None  # km/h
    direction: float | None = None  # degrees from north
    altitude: float | None = None  # metres
