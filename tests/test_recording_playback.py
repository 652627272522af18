"""Playback of recorded footage: the timeline, ``gw.recordings.open_playback`` (the gRPC
PullPlayback's source) and HTTP play return the very pictures that were recorded, through the gate."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import io
import time

import aiohttp
import av
import pytest

from gateway.media import CLOCK_RATE
from gateway.policy import InternalAccess
from gateway.recording.web import PART
from tests.conftest import auth, synthetic
from tests.people import FAST_ARGON2, bearer, person, trail

TEST_READER = InternalAccess("test")  # the witness reader and the direct playback calls


def _decode(units) -> int:  # noqa: ANN001
    ctx = av.CodecContext.create("h264", "r")
    frames = 0
    for u in units:
        frames += len(ctx.decode(av.Packet(u.data)))
    return frames + len(ctx.decode(None))


async def test_playback_returns_the_recorded_frames_over_the_hook_and_http(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(storage={"url": db_url}, cameras=[synthetic("pb")], identity=FAST_ARGON2,
                            recording={"cameras": ["pb"], "segment_seconds": 1.0, "fsync": False})
    base_resource = gw.resource_resolver
    gw.resource_resolver = lambda cid: replace(base_resource(cid), security_level=3)
    operator = await person(gw, "op", "wall_operator", clearance=1)  # below the camera's level
    part = gw.app[PART]
    live: list[bytes] = []  # what the camera sent
    with gw.hub.subscribe(TEST_READER, "pb", name="test-witness") as witness:
        deadline = time.monotonic() + 20
        while True:
            unit = await asyncio.wait_for(witness.get(), 5)
            live.append(unit.data)
            async with gw.db.session() as s:
                from sqlalchemy import func, select

                from gateway.recording.index import SegmentRow
                closed = await s.scalar(select(func.count()).select_from(SegmentRow).where(SegmentRow.status == "closed"))
            if closed >= 3:
                break
            assert time.monotonic() < deadline
    t0 = datetime.now(UTC) - timedelta(minutes=2)
    ranges = await gw.recordings.ranges("pb", t0, datetime.now(UTC))
    assert len(ranges) == 1 and (ranges[0][1] - ranges[0][0]).total_seconds() >= 2.5
    start, end = ranges[0][0] + timedelta(seconds=0.5), ranges[0][0] + timedelta(seconds=2.5)

    units = [u async for u in await gw.recordings.open_playback(TEST_READER, "pb", start, end, 0)]
    assert units[0].keyframe and units[0].wallclock <= start.timestamp() + 1e-3
    assert all(b.dts > a.dts and b.wallclock > a.wallclock for a, b in zip(units, units[1:]))
    assert units[-1].wallclock < end.timestamp() and len(units) >= 50
    first = live.index(units[0].data)
    assert live[first:first + len(units)] == [u.data for u in units]  # bit-exact and in order: no re-encoding
    assert _decode(units) == len(units)

    began = time.monotonic()
    paced = [u async for u in await gw.recordings.open_playback(TEST_READER, "pb", start, start + timedelta(seconds=1), 4.0)]
    assert 0.2 <= time.monotonic() - began < 1.0 and (paced[-1].dts - paced[0].dts) / CLOCK_RATE > 0.8
    with pytest.raises(LookupError):
        await gw.recordings.open_playback(TEST_READER, "pb", t0 - timedelta(days=1), t0 - timedelta(hours=1), 1)

    base = f"http://127.0.0.1:{gw.http_port}/api/recordings/pb"
    q = {"start": start.isoformat(), "end": end.isoformat(), "speed": "16"}
    async with aiohttp.ClientSession(headers=auth()) as http:
        async with http.get(f"{base}/ranges", params={"start": t0.isoformat()}) as r:
            assert len((await r.json())["ranges"]) == 1
        async with http.get(f"{base}/play", params=q) as r:
            assert r.status == 200 and r.content_type == "video/mp4"
            body = await r.read()
        async with http.get(f"{base}/play", params={**q, "format": "ts"}) as r:
            ts = await r.read()
        async with http.get(f"{base}/play", params={**q, "start": (t0 - timedelta(days=1)).isoformat(),
                                                    "end": t0.isoformat()}) as r:
            assert r.status == 404
        async with http.get(f"{base}/play", params={**q, "speed": "fast"}) as r:
            assert r.status == 400 and (await r.json())["field"] == "speed"
        async with http.get(f"{base}/play", params=q, headers=bearer(operator)) as r:
            assert r.status == 403 and "clearance 1 is below security level 3" in (await r.json())["message"]
    for blob in (body, ts):
        with av.open(io.BytesIO(blob)) as container:
            frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        assert len(frames) == len(units) and frames[0].shape == (240, 320)
    asked = [(r.actor.split(":")[0], r.decision, r.extra["egress"], r.extra["start"], r.extra["end"])
             for r in await trail(gw, action="view_playback", resource="camera:pb")]
    assert ("token", "allow", "http", start.isoformat(), end.isoformat()) in asked  # the exact range asked for
    assert asked[-1] == ("user", "deny", "http", start.isoformat(), end.isoformat())
    assert part.recorder.counters["segments"] >= 3


def test_r9_open_segment_with_nothing_on_disk_yet_reads_as_empty(tmp_path) -> None:  # noqa: ANN001
    """Playback "up to now" reaches the segment being written; before the muxer's first block lands
    its file is empty (or a fragment), and reading it must end quietly, not break the stream."""
    from gateway.recording.segments import read_units

    empty = tmp_path / "open.ts"
    empty.write_bytes(b"")
    fragment = tmp_path / "fragment.ts"
    fragment.write_bytes(b"\x47" + bytes(100))  # one sync byte and a torn packet
    assert list(read_units(empty, "h264")) == []
    assert list(read_units(fragment, "h264")) == []
