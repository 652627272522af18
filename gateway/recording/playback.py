"""Recorded footage as access units (``gw.recordings``): timeline ranges and paced playback from
any instant, for the HTTP player and the gRPC ``PullPlayback``. Segments are demuxed, never decoded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import av

from gateway.media import CLOCK_RATE, AccessUnit
from gateway.policy import PLAYBACK, Decision, InternalAccess, require

from .config import MAX_INTERNAL_SPEED, RecordingConfig

from .index import PLAYABLE, SegmentRow, iso, utc
from .segments import AV_CODEC, TIME_BASE, read_units

if TYPE_CHECKING:
    from gateway.app import Gateway

    from .recorder import Recorder

GAP = 1.0  # seconds: segments closer than this join into one timeline range

class Recordings:
    def __init__(self, gw: Gateway, root: Path, recorder: Recorder, cfg: RecordingConfig) -> None:
        self.gw, self.root, self.recorder = gw, root, recorder
        self.max_speed, self.max_span = cfg.playback_max_speed, timedelta(hours=cfg.playback_max_hours)

    async def segments(self, channel_id: str, start: datetime, end: datetime) -> list[SegmentRow]:
        """Playable segments overlapping [start, end), oldest first; an open one ends at its last picture."""
        from sqlalchemy import select

        async with self.gw.db.session() as s:
            rows = list(await s.scalars(
                select(SegmentRow).where(SegmentRow.camera == channel_id, SegmentRow.status.in_(PLAYABLE),
                                         SegmentRow.start < end).order_by(SegmentRow.start, SegmentRow.id)))
        live = self.recorder.live.get(channel_id)
        out = []
        for row in rows:
            row.start, row.end = utc(row.start), utc(row.end)
            if row.status == "open":
                if live is None or live[0] != row.start:
                    continue  # left open by a crash and not yet recovered
                row.end = live[1]
            if row.end > start and (self.root / row.path).exists():
                out.append(row)
        return out

    async def ranges(self, channel_id: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        merged: list[list[datetime]] = []
        for row in await self.segments(channel_id, start, end):
            if merged and row.start - merged[-1][1] <= timedelta(seconds=GAP):
                merged[-1][1] = max(merged[-1][1], row.end)
            else:
                merged.append([row.start, row.end])
        return [(max(a, start), min(b, end)) for a, b in merged]

    async def open_playback(self, access: Decision | InternalAccess, channel_id: str, start: datetime,
                            end: datetime, speed: float = 1.0) -> AsyncIterator[AccessUnit]:
        """Access units from the keyframe at or before ``start`` up to ``end``, paced at ``speed``.

        ``access`` is the gate's VIEW_PLAYBACK decision whose window holds [start, end]: viewing is
        paced (0 < speed ≤ playback_max_speed) over at most playback_max_hours, since a copy at disk
        speed is an export (R11, R13). Only the gateway's own readers may ask for speed 0 (as fast as
        they take it). Raises LookupError when nothing is recorded there."""
        start, end = utc(start), utc(end)
        if end <= start:
            raise ValueError("end: must be after start")
        require(access, channel_id, PLAYBACK, (start, end))
        if isinstance(access, InternalAccess):
            if not 0 <= speed <= MAX_INTERNAL_SPEED:
                raise ValueError(f"speed: expected 0…{MAX_INTERNAL_SPEED:g}, got {speed}")
        else:
            if not 0 < speed <= self.max_speed:
                raise ValueError(f"speed: expected more than 0 and at most {self.max_speed:g}; "
                                 "a copy at disk speed is an export")
            if end - start > self.max_span:
                raise ValueError(f"end: one playback covers at most {self.max_span.total_seconds() / 3600:g} hours")
        rows = await self.segments(channel_id, start, end)
        if not rows:
            raise LookupError(f"nothing is recorded for {channel_id} between {iso(start)} and {iso(end)}")
        return self._play(rows, start.timestamp(), end.timestamp(), speed)

    async def _play(self, rows: list[SegmentRow], start: float, end: float, speed: float) -> AsyncIterator[AccessUnit]:
        loop = asyncio.get_running_loop()
        units = iter_range(self.root, rows, start, end)
        first_wall = clock0 = 0.0
        last_dts = -1
        try:
            while batch := await asyncio.to_thread(_take, units, 64):
                for wall, unit in batch:
                    if last_dts < 0:
                        first_wall, clock0 = wall, loop.time()
                    if speed:
                        delay = clock0 + (wall - first_wall) / speed - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    last_dts = max(round((wall - first_wall) * CLOCK_RATE), last_dts + 1)
                    yield replace(unit, dts=last_dts, pts=last_dts + (unit.pts - unit.dts), wallclock=wall)
        finally:
            units.close()


def iter_range(root: Path, rows: list[SegmentRow], start: float, end: float) -> Iterator[tuple[float, AccessUnit]]:
    """(wall-clock seconds, unit) from the keyframe at or before ``start`` up to ``end``. Blocking."""
    started = False
    held: list[tuple[float, AccessUnit]] = []  # the GOP running into ``start``
    for row in rows:
        base = utc(row.start).timestamp()
        units = read_units(root / row.path, row.codec)
        try:
            for offset, unit in units:
                wall = base + offset
                if wall >= end:
                    return
                if started:
                    yield wall, unit
                    continue
                if unit.keyframe:
                    held = []
                elif not held:
                    continue  # nothing to decode from yet
                held.append((wall, unit))
                if wall >= start:
                    started = True
                    yield from held
                    held = []
        finally:
            units.close()


def _take(units: Iterator[tuple[float, AccessUnit]], n: int) -> list[tuple[float, AccessUnit]]:
    return list(islice(units, n))


class StreamMuxer:
    """Access units → a byte stream a player can take while it is produced: fragmented MP4 (a
    browser's ``<video>`` plays it) or MPEG-TS. Blocking but cheap: muxing, no coding."""

    FORMATS = {"mp4": ("mp4", "video/mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}),
               "ts": ("mpegts", "video/mp2t", {})}

    def __init__(self, fmt: str, first: AccessUnit) -> None:
        name, self.content_type, options = self.FORMATS[fmt]
        self._chunks: list[bytes] = []
        self._container = av.open(self, "w", format=name, options=options)
        stream = self._container.add_stream(AV_CODEC[first.codec])
        stream.time_base = TIME_BASE
        stream.width, stream.height = picture_size(first)
        stream.codec_context.extradata = b"".join(b"\x00\x00\x00\x01" + p for p in first.params)
        self._stream = stream

    def write(self, data: bytes) -> int:  # the container's output
        self._chunks.append(bytes(data))
        return len(data)

    def add(self, unit: AccessUnit) -> bytes:
        packet = av.Packet(unit.data)
        packet.pts, packet.dts, packet.time_base = unit.pts, unit.dts, TIME_BASE
        packet.is_keyframe = unit.keyframe
        packet.stream = self._stream
        self._container.mux(packet)
        return self.drain()

    def close(self) -> bytes:
        self._container.close()
        return self.drain()

    def drain(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


def picture_size(keyframe: AccessUnit) -> tuple[int, int]:
    """Width and height from decoding one keyframe (once per playback; cheaper than an SPS parser
    here and right for both codecs)."""
    ctx = av.CodecContext.create(AV_CODEC[keyframe.codec], "r")
    packet = av.Packet(keyframe.data)
    packet.time_base = Fraction(1, CLOCK_RATE)
    for frame in ctx.decode(packet):
        return frame.width, frame.height
    for frame in ctx.decode(None):
        return frame.width, frame.height
    raise ValueError("the first picture could not be decoded")
