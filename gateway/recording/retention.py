"""The retention floor (R9, R10): nothing inside retention is deleted by anyone; expiry removes only
footage older than retention and not under an evidence lock; short storage refuses new recording
(low-priority cameras first) instead of deleting footage, the opposite of Frigate's behaviour."""

from __future__ import annotations

from datetime import datetime, timedelta
import logging
from pathlib import Path
import shutil
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from gateway.policy import Subject

from .config import RecordingConfig
from .events import StorageAlert
from .index import CLOSED, EXPIRED, PARTIAL, SegmentRow, iso, now, utc
from .locks import Locks, authorize_manage

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
RETENTION_ARTICLES = "QD 19(7), QD 20(3), WX 28"


class RetentionRefused(Exception):
    """A delete that would remove footage inside retention or under an evidence lock."""


class StorageGuard:
    """Watches free space and the quota; decides which cameras may start or keep recording."""

    def __init__(self, gw: Gateway, cfg: RecordingConfig, root: Path) -> None:
        self.gw, self.cfg, self.root = gw, cfg, root
        self.state = "ok"
        self.free_bytes = 0
        self.used_bytes = 0
        gw.metrics.collector(self._gauges)

    async def load(self) -> None:
        async with self.gw.db.session() as s:
            used = await s.scalar(select(func.sum(SegmentRow.size)).where(SegmentRow.status != EXPIRED))
        self.used_bytes = int(used or 0)

    def check(self) -> str:
        cfg = self.cfg
        self.free_bytes = shutil.disk_usage(self.root).free
        quota = cfg.quota_bytes
        if self.free_bytes < cfg.min_free_bytes // 4 or (quota and self.used_bytes >= quota):
            state = "full"
        elif self.free_bytes < cfg.min_free_bytes or (quota and self.used_bytes >= quota * 0.9):
            state = "short"
        else:
            state = "ok"
        if state != self.state:
            self.state = state
            refused = ["all"] if state == "full" else list(cfg.low_priority) if state == "short" else []
            log.warning("recording storage %s: %d bytes free, %d used; refused: %s", state, self.free_bytes,
                        self.used_bytes, refused or "none")
            self.gw.bus.publish(StorageAlert(state=state, free_bytes=self.free_bytes, used_bytes=self.used_bytes,
                                             refused=refused))
            if state != "ok":
                self.gw.metrics.inc("vsgw_recording_storage_alerts_total", state=state)
        return state

    def refuses(self, channel_id: str) -> str | None:
        if self.state == "full":
            return "recording storage is full; footage under retention is kept, so recording stops"
        if self.state == "short" and channel_id in self.cfg.low_priority:
            return "recording storage is short; low-priority camera refused"
        return None

    def _gauges(self):  # noqa: ANN202
        yield "vsgw_recording_free_bytes", (), self.free_bytes
        yield "vsgw_recording_used_bytes", (), self.used_bytes
        yield "vsgw_recording_storage_short", (), float(self.state != "ok")


class Retention:
    def __init__(self, gw: Gateway, cfg: RecordingConfig, root: Path, locks: Locks, guard: StorageGuard) -> None:
        self.gw, self.cfg, self.root, self.locks, self.guard = gw, cfg, root, locks, guard

    def cutoff(self, at: datetime | None = None) -> datetime:
        """Footage that ended before this instant is outside retention."""
        return (at or now()) - timedelta(days=self.cfg.retention_days)

    async def delete(self, subject: Subject, channel_id: str, start: datetime, end: datetime) -> int:
        """An operator's delete request. Refused inside retention (whoever asks) and under a lock."""
        await authorize_manage(self.gw, subject, channel_id, "recording.delete")
        cutoff = self.cutoff()
        refusal = None
        if end > cutoff:
            refusal = (f"footage after {iso(cutoff)} is inside the {self.cfg.retention_days}-day retention period and "
                       f"cannot be deleted, hidden or altered ({RETENTION_ARTICLES}; R9, R10)")
        elif locks := await self.locks.holding(channel_id, start, end):
            refusal = f"evidence lock {locks[0].id} holds this range until released (WX 29; R10)"
        if refusal:
            await self.gw.audit.record(actor=subject.id, action="recording.delete", resource=f"recording:{channel_id}",
                                       decision="deny", reason=refusal, address=subject.address,
                                       extra={"start": iso(start), "end": iso(end)})
            self.gw.metrics.inc("vsgw_recording_rejected_total", reason="delete_inside_retention")
            raise RetentionRefused(refusal)
        removed = await self._expire(channel_id, start, end, note=f"deleted on request of {subject.id}")
        await self.gw.audit.record(actor=subject.id, action="recording.delete", resource=f"recording:{channel_id}",
                                   decision="allow", reason=f"{removed} segments outside retention",
                                   address=subject.address, extra={"start": iso(start), "end": iso(end)})
        return removed

    async def sweep(self) -> int:
        """Expire what is outside retention and not locked; then re-check storage."""
        cutoff = self.cutoff()
        async with self.gw.db.session() as s:
            cameras = list(await s.scalars(select(SegmentRow.camera).distinct().where(
                SegmentRow.end < cutoff, SegmentRow.status.in_((CLOSED, PARTIAL)))))
        removed = 0
        for camera in cameras:
            removed += await self._expire(camera, None, cutoff, note="expired after retention")
        self.guard.check()
        return removed

    async def _expire(self, channel_id: str, start: datetime | None, end: datetime, note: str) -> int:
        """Remove segment files wholly inside [start, end) and before the cutoff, skipping locked ones;
        the index rows stay (status "expired") so the hash chain remains checkable."""
        cutoff = self.cutoff()
        locks = await self.locks.list(channel_id, active_only=True)
        query = select(SegmentRow).where(SegmentRow.camera == channel_id, SegmentRow.end <= min(end, cutoff),
                                         SegmentRow.status.in_((CLOSED, PARTIAL)))
        if start is not None:
            query = query.where(SegmentRow.start >= start)
        doomed: list[str] = []
        async with self.gw.db.session() as s:
            for row in await s.scalars(query):
                lo, hi = utc(row.start), utc(row.end)
                if hi > cutoff or any(utc(lk.start) < hi and lo < utc(lk.end) for lk in locks):
                    continue
                row.status, row.note = EXPIRED, note
                self.guard.used_bytes -= row.size
                doomed.append(row.path)
        for path in doomed:  # only once the index says so, so a failed commit deletes nothing
            (self.root / path).unlink(missing_ok=True)
        removed = len(doomed)
        if removed:
            self.gw.metrics.inc("vsgw_recording_expired_segments_total", removed)
        return removed
