"""Integrity check of a camera's recordings (R10, WX 31(2)(3)): every kept file still has the SHA-256
it was indexed with, and every segment names its predecessor's hash, so an altered, removed or
inserted segment shows up as a broken link."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .index import EXPIRED, OPEN, SegmentRow, iso
from .segments import hash_file

if TYPE_CHECKING:
    from gateway.app import Gateway


async def verify_chain(gw: Gateway, root: Path, channel_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    async with gw.db.session() as s:
        rows = list(await s.scalars(select(SegmentRow).where(SegmentRow.camera == channel_id, SegmentRow.start < end,
                                                             SegmentRow.end > start, SegmentRow.status != OPEN)
                                    .order_by(SegmentRow.start, SegmentRow.id)))
    problems: list[dict[str, Any]] = []
    checked = 0
    for prev, row in zip([None, *rows], rows):
        if prev is not None and row.prev_hash != prev.hash:
            problems.append({"segment": iso(row.start), "problem": "chain",
                             "detail": "does not name the previous segment's hash: a segment was removed or replaced"})
        if row.status == EXPIRED:
            continue
        path = root / row.path
        if not path.exists():
            problems.append({"segment": iso(row.start), "problem": "missing", "detail": "file gone inside the index"})
            continue
        digest, size = await asyncio.to_thread(hash_file, path)
        checked += 1
        if digest != row.hash or size != row.size:
            problems.append({"segment": iso(row.start), "problem": "altered",
                             "detail": f"SHA-256 {digest} differs from the indexed {row.hash}"})
    if problems:
        gw.metrics.inc("vsgw_recording_integrity_failures_total", len(problems))
    return {"camera": channel_id, "start": iso(start), "end": iso(end), "segments": len(rows), "files_checked": checked,
            "ok": not problems, "problems": problems}
