"""The bus event of a superior link: one per state transition (``cascade.state``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.bus import Event


@dataclass
class CascadeState(Event):
    """Our registration at a superior platform changed state: registering, registered, failed or stopped."""

    topic: ClassVar[str] = "cascade.state"
    camera_field: ClassVar[str] = ""  # about a link, not a camera
    superior: str
    state: str
    reason: str = ""
    next_attempt: float | None = None  # failed: when the next REGISTER goes out (Unix time)
