"""The recorder: one hub reader per recorded camera (so ingest stays on), cutting segments at
keyframes with no re-encoding, hashing each at close and chaining it to the camera's previous one.
Segments are video only: a camera's audio units are passed over.

Crash safety: a segment's index row is written (status "open") before its file exists, and is
completed at close; after a kill -9, :meth:`Recorder.recover` re-hashes every file still "open"
and indexes it as "partial", so nothing recorded is silently lost.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import logging
from pathlib import Path
import re
import time
from typing import TYPE_CHECKING

from sqlalchemy import select

from gateway.bus import ChannelAdded
from gateway.media import CLOCK_RATE, AccessUnit, ReaderLimits
from gateway.policy import InternalAccess

from .config import RecordingConfig, parse_schedule
from .events import RecordingRefused, SegmentClosed
from .index import CLOSED, OPEN, PARTIAL, SegmentRow, iso, utc
from .retention import StorageGuard
from .segments import SegmentWriter, hash_file, probe

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
RECORDER = InternalAccess("recorder")
LIMITS = ReaderLimits(max_bytes=64 * 1024 * 1024, max_delay=20.0)  # disk stalls must not cost footage
BATCH_SECONDS = 0.5  # units handed to the writer thread per hop
IDLE_CLOSE = 5.0  # a segment whose source went quiet this long is closed


def safe_name(channel_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", channel_id) or "_"


class Recorder:
    def __init__(self, gw: Gateway, cfg: RecordingConfig, root: Path, guard: StorageGuard) -> None:
        self.gw, self.cfg, self.root, self.guard = gw, cfg, root, guard
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.live: dict[str, tuple[datetime, datetime]] = {}  # camera → (open segment start, last picture)
        self._prev_hash: dict[str, str | None] = {}
        self._schedules = {cid: (a, b) for cid, a, b in map(parse_schedule, cfg.schedules)}
        self._watch: asyncio.Task[None] | None = None
        self.counters = {"writes": 0, "bytes": 0, "fsyncs": 0, "segments": 0}  # of closed segments
        self.writers: dict[str, SegmentWriter] = {}  # open segments

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        await self.recover()
        for cid in list(self.gw.registry.channels):
            if self.cfg.records(cid):
                self.ensure(cid)
        self._watch = asyncio.get_running_loop().create_task(self._watch_channels(), name="recorder-watch")

    async def stop(self) -> None:
        tasks = [t for t in (self._watch, *self.tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()

    def ensure(self, channel_id: str) -> None:
        if channel_id not in self.tasks:
            self.tasks[channel_id] = asyncio.get_running_loop().create_task(
                self._run(channel_id), name=f"recorder:{channel_id}")

    async def _watch_channels(self) -> None:
        with self.gw.bus.subscribe(ChannelAdded.topic) as sub:
            async for event in sub:
                if isinstance(event, ChannelAdded) and self.cfg.records(event.channel_id):
                    self.ensure(event.channel_id)

    async def recover(self) -> int:
        """Index what an unclean stop left open: re-hash it and mark it "partial"."""
        async with self.gw.db.session() as s:
            rows = list(await s.scalars(select(SegmentRow).where(SegmentRow.status == OPEN)))
            for row in rows:
                path = self.root / row.path
                if path.exists():
                    row.hash, row.size = await asyncio.to_thread(hash_file, path)
                    row.frames, seconds = await asyncio.to_thread(probe, path, row.codec)
                    row.end = utc(row.start) + timedelta(seconds=seconds)
                    row.note = "recovered after an unclean stop"
                else:
                    row.size, row.note = 0, "no data reached the disk before an unclean stop"
                row.status = PARTIAL
                log.warning("recovered segment %s of %s as partial (%d bytes)", row.path, row.camera, row.size)
        if rows:
            self.gw.metrics.inc("vsgw_recording_recovered_segments_total", len(rows))
        return len(rows)

    # -- per camera ----------------------------------------------------------------------
    def scheduled(self, channel_id: str, at: float | None = None) -> bool:
        window = self._schedules.get(channel_id)
        if window is None:
            return True
        t = time.localtime(at)
        minute = t.tm_hour * 60 + t.tm_min
        start, end = window
        return start <= minute < end if start <= end else minute >= start or minute < end

    def _refusal(self, channel_id: str) -> str | None:
        if not self.scheduled(channel_id):
            return "outside its recording schedule"
        return self.guard.refuses(channel_id)

    async def _run(self, channel_id: str) -> None:
        delay = 0.5
        refused: str | None = None
        while True:
            reason = self._refusal(channel_id)
            if reason:
                if reason != refused:
                    refused = reason
                    self.gw.bus.publish(RecordingRefused(channel_id=channel_id, reason=reason))
                    self.gw.metrics.inc("vsgw_recording_refused_total", camera=channel_id)
                await asyncio.sleep(5)
                self.guard.check()
                continue
            refused = None
            try:
                await self._record(channel_id)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    log.warning("recording %s: error while stopping", channel_id, exc_info=True)
                    raise asyncio.CancelledError from None  # a failure while stopping must not swallow the stop
                log.exception("recording %s failed; retrying in %.1fs", channel_id, delay)
                self.gw.metrics.inc("vsgw_recording_errors_total", camera=channel_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _record(self, channel_id: str) -> None:
        """Record until the schedule or storage refuses, or the stream ends."""
        if channel_id not in self._prev_hash:
            self._prev_hash[channel_id] = await self._last_hash(channel_id)
        segment: _Open | None = None
        batch: list[AccessUnit] = []
        last: AccessUnit | None = None
        with self.gw.hub.subscribe(RECORDER, channel_id, name="recorder", limits=LIMITS) as reader:
            try:
                while True:
                    unit = reader.get_nowait()
                    if unit is None:
                        try:
                            async with asyncio.timeout(IDLE_CLOSE if segment else 1.0):
                                unit = await reader.get()
                        except TimeoutError:
                            if segment is not None:  # the source went quiet: make what we have durable
                                segment = await self._close(segment, batch)
                                batch = []
                            if self._refusal(channel_id):
                                return
                            continue
                    if unit.is_audio:  # segments hold the video only (MPEG-TS has no G.711 that readers know)
                        continue
                    jump = last is not None and not 0 < unit.dts - last.dts <= SegmentWriter.MAX_JUMP
                    last = unit
                    if segment is not None and (jump or (unit.keyframe and self._due(segment, unit))):
                        segment = await self._close(segment, batch)
                        batch = []
                        if self._refusal(channel_id):
                            return
                    if segment is None:
                        if not unit.keyframe:
                            continue
                        segment = await self._open(channel_id, unit)
                    batch.append(unit)
                    if unit.wallclock - batch[0].wallclock >= BATCH_SECONDS:
                        await asyncio.to_thread(segment.writer.add, batch)
                        batch = []
                    self.live[channel_id] = (segment.start, _dt(unit.wallclock))
            finally:
                if segment is not None:
                    await self._close(segment, batch)  # cancellation arrives once; this still runs

    def io_stats(self) -> dict[str, int]:
        """Disk writes so far, open segments included (the benchmark's write pattern)."""
        out = dict(self.counters)
        for writer in self.writers.values():
            out["writes"] += writer.writes
            out["bytes"] += writer.size
        return out

    def _due(self, segment: _Open, unit: AccessUnit) -> bool:
        """At a keyframe once the segment is long enough (half a frame of slack for keyframe jitter)."""
        return (unit.dts - segment.first_dts) / CLOCK_RATE >= self.cfg.segment_seconds - 0.02

    async def _last_hash(self, channel_id: str) -> str | None:
        async with self.gw.db.session() as s:
            return await s.scalar(select(SegmentRow.hash).where(SegmentRow.camera == channel_id,
                                                                SegmentRow.hash.is_not(None))
                                  .order_by(SegmentRow.start.desc(), SegmentRow.id.desc()).limit(1))

    async def _open(self, channel_id: str, unit: AccessUnit) -> _Open:
        start = _dt(unit.wallclock)
        rel = f"{safe_name(channel_id)}/{start:%Y/%m/%d}/{start:%H%M%S}.{start.microsecond // 1000:03d}Z.ts"
        row = SegmentRow(camera=channel_id, start=start, end=start, path=rel, codec=unit.codec,
                         prev_hash=self._prev_hash.get(channel_id), status=OPEN)
        async with self.gw.db.session() as s:  # the row first: a crash after this leaves a findable "open"
            s.add(row)
        writer = await asyncio.to_thread(SegmentWriter, self.root / rel, unit.codec, fsync=self.cfg.fsync)
        self.writers[channel_id] = writer
        return _Open(row.id, channel_id, start, unit.dts, writer)

    async def _close(self, segment: _Open, batch: list[AccessUnit]) -> None:
        writer = segment.writer
        if batch:
            await asyncio.to_thread(writer.add, batch)
        digest, size = await asyncio.to_thread(writer.close)
        end = segment.start + timedelta(seconds=writer.duration)
        async with self.gw.db.session() as s:
            row = await s.get(SegmentRow, segment.row_id)
            row.end, row.size, row.hash, row.frames, row.status = end, size, digest, writer.frames, CLOSED
        self._prev_hash[segment.camera] = digest
        self.live.pop(segment.camera, None)
        self.writers.pop(segment.camera, None)
        self.guard.used_bytes += size
        c = self.counters
        c["writes"] += writer.writes
        c["bytes"] += size
        c["fsyncs"] += writer.fsyncs
        c["segments"] += 1
        self.gw.metrics.inc("vsgw_recording_segments_total", camera=segment.camera)
        self.gw.metrics.inc("vsgw_recording_bytes_total", size, camera=segment.camera)
        self.gw.bus.publish(SegmentClosed(channel_id=segment.camera, start=iso(segment.start), end=iso(end),
                                          hash=digest, status=CLOSED, size=size))
        self.guard.check()
        return None


class _Open:
    __slots__ = ("row_id", "camera", "start", "first_dts", "writer")

    def __init__(self, row_id: int, camera: str, start: datetime, first_dts: int, writer: SegmentWriter) -> None:
        self.row_id, self.camera, self.start, self.first_dts, self.writer = row_id, camera, start, first_dts, writer


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
