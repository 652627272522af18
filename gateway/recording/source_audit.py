"""Source-retention audit (R9, R17): GB/T 28181 devices keep their own recordings; each is asked
(RecordInfo through ``adapter.query_records``) for the day 30 days back, and a channel holding
nothing there gets a compliance finding citing QD 19(7) and WX 28."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
import logging
from typing import TYPE_CHECKING, Any

from adapters.base import NotSupported
from gateway.registry import UnknownChannel

from .config import RETENTION_FLOOR_DAYS
from .index import iso, now

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
ARTICLES = ["QD 19(7)", "WX 28"]
QUERY_TIMEOUT = 15.0


async def audit_source_retention(gw: Gateway, kinds: list[str], at: datetime | None = None,
                                 concurrency: int = 8) -> dict[str, Any]:
    """Ask every channel of the audited adapter kinds for the day ``RETENTION_FLOOR_DAYS`` back."""
    day = ((at or now()) - timedelta(days=RETENTION_FLOOR_DAYS)).date()
    day_start = datetime.combine(day, time.min, UTC)
    day_end = day_start + timedelta(days=1)
    gate = asyncio.Semaphore(concurrency)
    channels = []
    for cid in sorted(gw.registry.channels):
        try:
            adapter = gw.registry.adapter_for(cid)
        except UnknownChannel:
            continue
        if adapter.kind in kinds:
            channels.append((cid, adapter))

    async def check(cid: str, adapter: Any) -> dict[str, Any] | None:
        async with gate:
            try:
                ranges = await asyncio.wait_for(adapter.query_records(cid, day_start, day_end), QUERY_TIMEOUT)
            except NotSupported:
                return None
            except Exception as exc:  # noqa: BLE001 - an unreachable device is itself a finding
                gw.metrics.inc("vsgw_recording_source_audit_failures_total")
                return _finding(cid, "unknown", f"the device did not answer the record query ({type(exc).__name__}); "
                                f"its {RETENTION_FLOOR_DAYS}-day retention cannot be confirmed", day)
        if ranges:
            return None
        return _finding(cid, "violation", f"the device holds no recording from {day.isoformat()}, "
                        f"{RETENTION_FLOOR_DAYS} days back: footage is not kept the required 30 days", day)

    results = await asyncio.gather(*(check(cid, adapter) for cid, adapter in channels))
    findings = [f for f in results if f is not None]
    return {"checked_at": iso(now()), "day": day.isoformat(), "channels_checked": len(channels),
            "findings": findings}


def _finding(channel_id: str, severity: str, message: str, day: Any) -> dict[str, Any]:
    return {"kind": "source_retention", "requirement": "R9", "articles": ARTICLES, "channel_id": channel_id,
            "severity": severity, "message": message, "day": day.isoformat()}
