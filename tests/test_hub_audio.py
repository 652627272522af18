"""Audio units in the hub (DESIGN.md gateway/media): one Stream carries a camera's audio beside its
video; audio never starts a GOP, a skipping reader gets audio again from the next keyframe on, and
the stream's codec and frame rate stay those of the video."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.media import H264, PCMA, AccessUnit, ReaderLimits, Stream
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")
SPS, PPS = b"\x67\x42\x00\x1f", b"\x68\xce\x3c\x80"


def picture(i: int, key: bool, size: int = 1000) -> AccessUnit:
    body = (b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x00\x01\x65") if key \
        else b"\x00\x00\x00\x01\x41"
    return AccessUnit(H264, i * 3600, i * 3600, key, body + bytes(size), (SPS, PPS) if key else ())


def sound(i: int) -> AccessUnit:
    return AccessUnit(PCMA, i * 3600 + 1800, i * 3600 + 1800, False, b"\xd5" * 320)


def camera(count: int, gop: int) -> list[AccessUnit]:
    out = []
    for i in range(count):
        out += [picture(i, i % gop == 0), sound(i)]
    return out


class Feed:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[AccessUnit | None] = asyncio.Queue()

    async def source(self) -> AsyncIterator[AccessUnit]:
        while (u := await self.queue.get()) is not None:
            yield u


async def drain(reader, count: int) -> list[AccessUnit]:
    return [await reader.get() for _ in range(count)]


async def test_r1_a_reader_that_skips_ahead_gets_audio_again_after_the_next_keyframe() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source, linger=0.1)
    fast = stream.subscribe(TEST_READER, "fast")
    slow = stream.subscribe(TEST_READER, "slow", ReaderLimits(max_bytes=15_000, max_delay=10))
    units = camera(30, gop=10)
    for u in units:
        feed.queue.put_nowait(u)
    got = await drain(fast, len(units))
    assert got == units
    kept = []
    while (u := slow.get_nowait()) is not None:
        kept.append(u)
    assert slow.skips >= 1
    # what the slow reader kept after its last skip starts at a keyframe and has the audio behind it
    start = max(i for i, u in enumerate(kept) if u.keyframe)
    tail = kept[start:]
    assert tail[0].keyframe and tail[0].pts == 20 * 3600
    assert [u.pts for u in tail if u.is_audio] == [i * 3600 + 1800 for i in range(20, 30)]
    assert not any(u.is_audio and u.keyframe for u in kept)
    await stream.close()


async def test_r1_a_reader_joining_mid_gop_gets_the_cached_audio_after_the_keyframe() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source, linger=0.1)
    first = stream.subscribe(TEST_READER, "first")
    units = [sound(-1)] + camera(7, gop=5)  # audio before any picture: not a GOP start
    for u in units:
        feed.queue.put_nowait(u)
    await drain(first, len(units))
    late = stream.subscribe(TEST_READER, "late")
    replay = []
    while (u := late.get_nowait()) is not None:
        replay.append(u)
    assert replay[0].keyframe and replay[0].pts == 5 * 3600
    assert [u.codec for u in replay] == [H264, PCMA, H264, PCMA]
    stats = stream.stats()
    assert stream.codec == stats.codec == H264 and stats.audio_codec == PCMA
    assert stats.fps == 7 / stream.STATS_WINDOW  # pictures only
    assert stream.audio_units == 8
    await stream.close()


async def test_r1_a_reader_waiting_for_a_keyframe_drops_audio_until_the_picture_comes() -> None:
    feed = Feed()
    stream = Stream("cam", feed.source, linger=0.1)
    warm = stream.subscribe(TEST_READER, "warm")
    for u in camera(3, gop=10):
        feed.queue.put_nowait(u)
    await drain(warm, 6)
    fresh = stream.subscribe(TEST_READER, "fresh", from_gop=False)
    later = camera(12, gop=10)[6:]  # pictures 3..11: keyframe at 10
    for u in later:
        feed.queue.put_nowait(u)
    await drain(warm, len(later))
    got = []
    while (u := fresh.get_nowait()) is not None:
        got.append(u)
    assert got[0].keyframe and got[0].pts == 10 * 3600
    assert [u.pts for u in got if u.is_audio] == [10 * 3600 + 1800, 11 * 3600 + 1800]
    await stream.close()
