"""Segment files: MPEG-TS written by PyAV with codec copy (no re-encoding), hashed as written.

MPEG-TS is chosen over MP4 because a file cut short by a crash is still valid up to its last
188-byte packet, so a kill -9 loses at most the bytes still in the muxer's buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
import hashlib
import os
from pathlib import Path

import av

from gateway.media import CLOCK_RATE, H265, AccessUnit
from gateway.media.nal import ParamTracker, split_annexb

TIME_BASE = Fraction(1, CLOCK_RATE)
AV_CODEC = {"h264": "h264", "h265": "hevc"}


class Discontinuity(Exception):
    """Timestamps went backwards or jumped: the segment must end here."""


class _HashingFile:
    """The muxer's output: every byte goes to the file and into SHA-256; writes are counted."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self.sha = hashlib.sha256()
        self.size = 0
        self.writes = 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        self.sha.update(view)
        while view:
            view = view[os.write(self.fd, view):]
        self.size += len(data)
        self.writes += 1
        return len(data)


class SegmentWriter:
    """One open segment. Blocking: drive it from a worker thread, one call at a time."""

    MAX_JUMP = 10 * CLOCK_RATE  # a dts jump this large means the source restarted

    def __init__(self, path: Path, codec: str, *, fsync: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fsync = fsync
        self._out = _HashingFile(path)
        self._container = av.open(self._out, "w", format="mpegts", options={"flush_packets": "0"})
        self._stream = self._container.add_stream(AV_CODEC[codec])
        self._stream.time_base = TIME_BASE
        self._dts0: int | None = None
        self._last_dts: int | None = None
        self.frames = 0
        self.first_wallclock: float | None = None
        self.last_wallclock: float | None = None
        self.frame_ticks = CLOCK_RATE // 25
        self.fsyncs = 0

    def add(self, units: list[AccessUnit]) -> None:
        for unit in units:
            if self._dts0 is None:
                self._dts0 = unit.dts
                self.first_wallclock = unit.wallclock
            elif not 0 < unit.dts - self._last_dts <= self.MAX_JUMP:  # type: ignore[operator]
                raise Discontinuity(f"dts {self._last_dts} → {unit.dts}")
            else:
                self.frame_ticks = unit.dts - self._last_dts  # type: ignore[operator]
            packet = av.Packet(unit.data)
            packet.dts = unit.dts - self._dts0
            packet.pts = max(unit.pts - self._dts0, packet.dts)
            packet.time_base = TIME_BASE
            packet.is_keyframe = unit.keyframe
            packet.stream = self._stream
            self._container.mux(packet)
            self._last_dts = unit.dts
            self.last_wallclock = unit.wallclock
            self.frames += 1

    @property
    def duration(self) -> float:
        """Seconds of media written, counting the last frame's own duration."""
        if self._dts0 is None:
            return 0.0
        return (self._last_dts - self._dts0 + self.frame_ticks) / CLOCK_RATE  # type: ignore[operator]

    def close(self) -> tuple[str, int]:
        """Finish the file, make it durable, and return (sha256 hex, size)."""
        self._container.close()
        if self.fsync:
            os.fsync(self._out.fd)
            self.fsyncs += 1
        os.close(self._out.fd)
        if self.fsync:
            fsync_dir(self.path.parent)
            self.fsyncs += 1
        return self._out.sha.hexdigest(), self._out.size

    @property
    def size(self) -> int:
        return self._out.size

    @property
    def writes(self) -> int:
        return self._out.writes


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def read_units(path: Path, codec: str) -> Iterator[tuple[float, AccessUnit]]:
    """(seconds from the segment's first picture, access unit) for each picture in a segment file;
    a truncated tail (a crash) simply ends the iteration, and a file with nothing readable yet (the
    open segment before the muxer's first 32 KiB block) yields nothing: playback up to "now" reads it."""
    params = ParamTracker(H265 if codec == H265 else codec)
    try:
        container = av.open(str(path), "r", format="mpegts")
    except (av.error.EOFError, av.error.InvalidDataError):
        return
    with container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        dts0: int | None = None
        try:
            for packet in container.demux(stream):
                if packet.dts is None or packet.size == 0:
                    continue
                dts0 = packet.dts if dts0 is None else dts0
                data = strip_aud(bytes(packet), codec)
                keyframe, _ = params.observe(split_annexb(data))
                dts = packet.dts - dts0
                pts = (packet.pts if packet.pts is not None else packet.dts) - dts0
                yield dts / CLOCK_RATE, AccessUnit(codec, pts, dts, keyframe or packet.is_keyframe, data, params.params)
        except av.error.InvalidDataError:
            return


def strip_aud(data: bytes, codec: str) -> bytes:
    """Drop the access-unit delimiter the MPEG-TS muxer puts in front of each picture (the
    container requires it; it carries no picture data), so playback hands out the bytes recorded."""
    aud = b"\x00\x00\x00\x01\x46" if codec == H265 else b"\x00\x00\x00\x01\x09"
    if not data.startswith(aud):
        return data
    nxt = data.find(b"\x00\x00\x01", len(aud))
    if nxt < 0:
        return data
    return data[nxt - 1:] if data[nxt - 1] == 0 else data[nxt:]


def probe(path: Path, codec: str) -> tuple[int, float]:
    """(pictures, seconds) actually in a file; used to recover a segment a crash left open."""
    frames, last, step = 0, 0.0, 0.04
    for offset, _ in read_units(path, codec):
        if frames:
            step = max(offset - last, 0.001)
        frames, last = frames + 1, offset
    return frames, (last + step) if frames else 0.0
