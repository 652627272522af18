"""The media hub: GOP cache start, bounded readers, linger, stats (DESIGN.md gateway/media)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.media import AccessUnit, H264, Hub, ReaderLimits, Stream
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")

SPS, PPS = b"\x67\x42\x00\x1f", b"\x68\xce\x3c\x80"


def unit(i: int, key: bool, size: int = 1000) -> AccessUnit:
    body = (b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x00\x01\x65") if key else b"\x00\x00\x00\x01\x41"
    return AccessUnit(H264, i * 3600, i * 3600, key, body + bytes(size), (SPS, PPS) if key else ())


class Feed:
    """A controllable source: the test pushes units; counts how often it was opened."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[AccessUnit | None] = asyncio.Queue()
        self.opened = 0
        self.closed = asyncio.Event()

    async def source(self, key: str = "") -> AsyncIterator[AccessUnit]:
        self.opened += 1
        try:
            while (u := await self.queue.get()) is not None:
                yield u
        finally:
            self.closed.set()


async def test_new_reader_starts_at_cached_keyframe_with_parameter_sets() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source, linger=0.1)
    first = stream.subscribe(TEST_READER, "first")
    for i in range(7):
        feed.queue.put_nowait(unit(i, key=(i % 5 == 0)))
    for _ in range(7):
        await first.get()
    late = stream.subscribe(TEST_READER, "late")
    got = late.get_nowait()
    assert got is not None and got.keyframe and got.pts == 5 * 3600
    assert got.params == (SPS, PPS) and got.data.startswith(b"\x00\x00\x00\x01" + SPS)
    assert late.get_nowait().pts == 6 * 3600
    await stream.close()


async def test_slow_reader_skips_to_next_keyframe_and_others_get_everything() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source, linger=0.1)
    fast = stream.subscribe(TEST_READER, "fast")
    slow = stream.subscribe(TEST_READER, "slow", ReaderLimits(max_bytes=10_000, max_delay=10))
    received = []
    for i in range(31):
        stream.write(unit(i, key=(i % 10 == 0)))
        received.append((await fast.get()).pts)
    assert received == [i * 3600 for i in range(31)]
    assert slow.skips >= 1 and slow.dropped > 0
    queued = []
    while (u := slow.get_nowait()) is not None:
        queued.append(u)
    assert queued[0].keyframe, "after a skip the reader resumes at a keyframe"
    assert stream.stats().skips == slow.skips
    await stream.close()


async def test_reader_bounded_by_media_time() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source)
    slow = stream.subscribe(TEST_READER, "slow", ReaderLimits(max_bytes=10**9, max_delay=1.0))
    for i in range(60):  # 60 frames at 25 fps = 2.4 s of media, never read
        stream.write(unit(i, key=(i % 25 == 0), size=10))
    queued = []
    while (u := slow.get_nowait()) is not None:
        queued.append(u)
    span = (queued[-1].dts - queued[0].dts) / 90_000
    assert span <= 1.0 and queued[0].keyframe and slow.skips >= 1
    await stream.close()


async def test_reader_joining_late_in_a_long_gop_gets_it_all_then_is_bounded_again() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source)
    warm = stream.subscribe(TEST_READER, "warm")
    for i in range(90):  # 3.6 s into a GOP, longer than the reader's 1 s bound
        stream.write(unit(i, key=(i == 0), size=10))
    late = stream.subscribe(TEST_READER, "late", ReaderLimits(max_bytes=10**9, max_delay=1.0))
    stream.write(unit(90, key=False, size=10))  # live goes on before the reader runs
    got = []
    while (u := late.get_nowait()) is not None:
        got.append(u.pts // 3600)
    assert got == list(range(91)) and late.skips == 0  # instant start: the keyframe and the GOP
    for i in range(91, 130):  # caught up once; now 1.5 s unread is a skip again
        stream.write(unit(i, key=False, size=10))
    assert late.skips == 1
    warm.close()
    await stream.close()


async def test_ingest_starts_on_first_reader_and_stops_after_linger() -> None:
    feed = Feed()
    hub = Hub(feed.source, linger=0.05)
    reader = hub.subscribe(TEST_READER, "cam")
    feed.queue.put_nowait(unit(0, True))
    assert (await asyncio.wait_for(reader.get(), 2)).keyframe
    assert feed.opened == 1 and hub.streams["cam"].running
    reader.close()
    await asyncio.wait_for(feed.closed.wait(), 2)
    assert not hub.streams["cam"].running
    await hub.close()


async def test_reader_returning_within_linger_keeps_ingest() -> None:
    feed = Feed()
    hub = Hub(feed.source, linger=5)
    hub.subscribe(TEST_READER, "cam").close()
    again = hub.subscribe(TEST_READER, "cam")
    feed.queue.put_nowait(unit(0, True))
    await asyncio.wait_for(again.get(), 2)
    assert feed.opened == 1
    await hub.close()


async def test_failing_source_restarts_with_backoff_and_reports_state() -> None:
    states: list[tuple[bool, str | None]] = []
    attempts = 0

    async def flaky(key: str = "") -> AsyncIterator[AccessUnit]:
        nonlocal attempts
        attempts += 1
        yield unit(attempts, True)
        raise ConnectionResetError("camera went away")

    stream = Stream("cam", flaky, on_state=lambda s, running, why: states.append((running, why)), backoff=(0.01, 0.02))
    reader = stream.subscribe(TEST_READER)
    await asyncio.wait_for(reader.get(), 2)
    await asyncio.wait_for(reader.get(), 2)
    assert attempts >= 2 and stream.restarts >= 1
    assert (False, "ConnectionResetError: camera went away") in states and (True, None) in states
    await stream.close()


async def test_stats_report_fps_bitrate_and_keyframe_interval() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source)
    stream.subscribe(TEST_READER)
    for i in range(10):
        stream.write(unit(i, key=(i % 5 == 0), size=1000))
    stats = stream.stats()
    assert stats.units == 10 and stats.readers == 1 and stats.codec == H264
    assert stats.fps == 5.0  # 10 units inside the 2 s window
    assert stats.bitrate > 0 and stats.keyframe_interval is not None
    await stream.close()
