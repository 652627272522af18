"""Shared helpers for the recording tests (no tests here): write real segments from pictures and
index them as the recorder would, and collect audit records."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import av
import numpy as np

from gateway.media import CLOCK_RATE, H264, AccessUnit
from gateway.media.nal import ParamTracker, split_annexb
from gateway.recording.index import CLOSED, SegmentRow
from gateway.recording.recorder import safe_name
from gateway.recording.segments import SegmentWriter


def encode(pictures: list[np.ndarray], fps: int = 25, gop: int = 10) -> list[AccessUnit]:
    """H.264 access units of RGB pictures (libx264, no B-frames), as a camera would send them."""
    h, w = pictures[0].shape[:2]
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.time_base, ctx.framerate, ctx.gop_size, ctx.max_b_frames = Fraction(1, CLOCK_RATE), fps, gop, 0
    ctx.options = {"preset": "ultrafast", "crf": "18", "x264-params": f"keyint={gop}:scenecut=0:repeat-headers=1"}
    params = ParamTracker(H264)
    units: list[AccessUnit] = []
    frames = [av.VideoFrame.from_ndarray(p, format="rgb24").reformat(format="yuv420p") for p in pictures]
    for i, frame in enumerate([*frames, None]):
        if frame is not None:
            frame.pts, frame.time_base = i * CLOCK_RATE // fps, ctx.time_base
        for packet in ctx.encode(frame):
            key, _ = params.observe(split_annexb(bytes(packet)))
            units.append(AccessUnit(H264, packet.pts, packet.dts, key, bytes(packet), params.params))
    return units


async def add_segment(gw: Any, camera: str, start: datetime, units: list[AccessUnit],
                      prev_hash: str | None = None, fps: int = 25) -> SegmentRow:
    """A closed, hashed, indexed segment starting at ``start`` (as the recorder leaves one)."""
    from gateway.recording.web import PART

    part = gw.app[PART]
    base = start.timestamp()
    units = [AccessUnit(u.codec, u.pts, u.dts, u.keyframe, u.data, u.params, base + u.dts / CLOCK_RATE) for u in units]
    rel = f"{safe_name(camera)}/{start:%Y/%m/%d}/{start:%H%M%S}.{start.microsecond // 1000:03d}Z.ts"

    def write() -> tuple[str, int, float, int]:
        writer = SegmentWriter(part.root / rel, H264, fsync=False)
        writer.add(units)
        digest, size = writer.close()
        return digest, size, writer.duration, writer.frames

    digest, size, seconds, frames = await asyncio.to_thread(write)
    row = SegmentRow(camera=camera, start=start, end=start + timedelta(seconds=seconds), path=rel, size=size,
                     frames=frames, codec=H264, hash=digest, prev_hash=prev_hash, status=CLOSED)
    async with gw.db.session() as s:
        s.add(row)
    part.guard.used_bytes += size
    return row


def gray_pictures(n: int, w: int = 160, h: int = 120) -> list[np.ndarray]:
    """Cheap distinct pictures: a bar moving across a gray field."""
    out = []
    for i in range(n):
        img = np.full((h, w, 3), 90, np.uint8)
        img[:, (i * 4) % w : (i * 4) % w + 10] = 230
        out.append(img)
    return out
