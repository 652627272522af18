"""Bus events of the recording part (subscribe to the ``recording.`` prefix)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from gateway.bus import Event


@dataclass
class StorageAlert(Event):
    """Storage crossed a threshold: "ok" | "short" (low-priority cameras refused) | "full" (all refused).
    Footage under retention is never deleted to make room (R9)."""

    topic: ClassVar[str] = "recording.storage"
    state: str
    free_bytes: int
    used_bytes: int
    refused: list[str] = field(default_factory=list)


@dataclass
class RecordingRefused(Event):
    topic: ClassVar[str] = "recording.refused"
    channel_id: str
    reason: str


@dataclass
class SegmentClosed(Event):
    topic: ClassVar[str] = "recording.segment"
    channel_id: str
    start: str
    end: str
    hash: str | None
    status: str
    size: int = 0
