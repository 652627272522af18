"""An export of footage the gateway does not hold, downloaded from the camera's device (R1, R10):
GB/T 28181 INVITE Download at the configured ``downloadspeed`` under the gate's EXPORT decision,
written as the same MP4 (copy, or redacted for public release) a gateway export writes. Progress
is the media time received against the range; the device's MediaStatus 121 completes it, and a
device that stalls or hangs up before the end fails it with that reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from adapters.base import NotSupported
from gateway.media import AccessUnit
from gateway.policy import Decision
from gateway.registry import UnknownChannel

from .index import utc

if TYPE_CHECKING:
    from gateway.app import Gateway

    from .redact import Redactor

COMPLETE = "end of file"


class Download(Protocol):
    """What a device adapter's ``open_download`` returns (``adapters.gb28181.playback.DevicePlayback``)."""

    offset: float
    outcome: str | None
    download_speed: int | None

    def __aiter__(self) -> AsyncIterator[AccessUnit]: ...

    async def aclose(self) -> None: ...


class DeviceIncomplete(Exception):
    """The device ended the download before the end of its file."""


def open_download(gw: Gateway, decision: Decision, channel_id: str, start: datetime, end: datetime) -> Download:
    """The device's download of [start, end] (not yet INVITEd: that happens when the job runs).
    LookupError when the camera's source cannot download, ConnectionError when it is offline."""
    try:
        adapter = gw.registry.adapter_for(channel_id)
    except UnknownChannel:
        raise LookupError(f"no camera {channel_id!r}") from None
    opener: Callable[..., Download] | None = getattr(adapter, "open_download", None)
    if opener is None:
        raise LookupError(f"{channel_id}'s source ({adapter.kind}) keeps no recordings to download")
    try:
        return opener(decision, channel_id, utc(start), utc(end))
    except NotSupported as exc:
        raise LookupError(str(exc)) from None


async def write(download: Download, start: datetime, end: datetime, out: Path, progress: Callable[[float], None],
                redactor: Redactor | None) -> dict[str, Any]:
    """Receive the whole download into ``out``; returns what the manifest says about the source."""
    from .export import Mp4  # the writer gateway exports use

    t0, span = utc(start).timestamp(), max((utc(end) - utc(start)).total_seconds(), 1e-3)
    writer: Mp4 | None = None
    frames = 0
    try:
        async with aclosing(download):
            async for unit in download:
                wall = t0 + download.offset
                if writer is None:
                    writer = await asyncio.to_thread(Mp4, out, unit, wall, redactor)
                await asyncio.to_thread(writer.add, wall, unit)
                frames += 1
                progress(min(0.99, max(0.0, download.offset / span)))
    finally:
        if writer is not None:
            await asyncio.to_thread(writer.close)
    if download.outcome != COMPLETE:
        raise DeviceIncomplete(f"the device ended the download before the end of its file ({download.outcome})")
    if writer is None:
        raise LookupError("the device sent no decodable picture in the range")
    return {"kind": "device", "downloadspeed": download.download_speed, "frames": frames,
            "media_seconds": round(download.offset, 3), "ended_by": "MediaStatus 121"}
