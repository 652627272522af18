"""What the device-management operations answer: a catalog sync's counts, a record search, and a
failed query said in words that name neither an address nor a secret (they reach logs and HTTP)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .server import DeviceRefused


@dataclass(slots=True)
class CatalogResult:
    items: int = 0  # unique catalog items received (cameras, tree nodes, peripherals)
    sum_num: int | None = None  # what the device said the total is
    packets: int = 0
    complete: bool = False
    channels: int = 0  # the device's channels after the sync
    added: int = 0
    removed: int = 0
    conflicts: int = 0  # items whose ID another device or adapter already holds
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One recording a device reported in RecordInfo, its times in aware UTC."""

    start: datetime
    end: datetime
    type: str | None
    name: str | None
    file_path: str | None
    file_size: int  # -1: not reported

    def to_dict(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end), "type": self.type, "name": self.name,
                "file_path": self.file_path, "file_size": None if self.file_size < 0 else self.file_size}


@dataclass(slots=True)
class RecordSearch:
    records: list[DeviceRecord] = field(default_factory=list)
    complete: bool = False
    sum_num: int | None = None
    packets: int = 0


def query_failure(exc: BaseException) -> str:
    """A failed device query in words fit for a log line or an HTTP error."""
    if isinstance(exc, DeviceRefused):
        return f"the device refused the query ({exc.status})"
    if isinstance(exc, TimeoutError):
        return "the device did not accept the query (no answer to the MESSAGE)"
    if isinstance(exc, ConnectionError | OSError):
        return f"the device is unreachable ({type(exc).__name__})"
    return type(exc).__name__


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
