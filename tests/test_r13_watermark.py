"""R13 (WX 25): a relative's video carries the grant's watermark in its pixels, re-encoded for
WebRTC with the source's timing and keyframes, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
import os
from pathlib import Path
import subprocess

import av
import cv2
import numpy as np
from PIL import ImageFont
import pytest

from adapters.synthetic import PatternEncoder, PatternSpec
from gateway.media import H264, H265, AccessUnit, ReaderLimits, Stream
from gateway.media.nal import nal_type, split_annexb
from gateway.media.overlay_font import face_for
from gateway.media.watermark import Pattern, watermarked
from gateway.metrics import Metrics
from gateway.policy.model import InternalAccess

TEXT = "grant g-123 2026-12-03 15:04 CST"


def camera(width: int, height: int, frames: int, *, gop: int = 100, forced: Iterable[int] = (),
           fps: int = 25) -> list[AccessUnit]:
    """Real H.264 from the project's synthetic camera; keyframes at 0 and at ``forced``."""
    enc = PatternEncoder(PatternSpec("cam", width, height, fps, gop))
    forced = set(forced)
    units = []
    for i in range(frames):
        if i in forced:
            enc.force_keyframe()
        units += enc.encode(1_800_000_000.0 + i / fps)
    return units


def ffmpeg_units(tmp_path: Path, codec: str, *extra: str) -> list[AccessUnit]:
    """H.264/H.265 that ffmpeg encoded at 15 fps, read back from MPEG-TS (90 kHz, Annex-B)."""
    path = tmp_path / f"{codec}.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
                    "-frames:v", "45", *extra, "-f", "mpegts", str(path)], check=True)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [AccessUnit(codec, p.pts, p.dts, p.is_keyframe, bytes(p))
                for p in container.demux(stream) if p.size]


async def source(units: list[AccessUnit]) -> AsyncIterator[AccessUnit]:
    for unit in units:
        yield unit


async def run(units: list[AccessUnit], text: str = TEXT, **kw) -> list[AccessUnit]:  # noqa: ANN003
    return [u async for u in watermarked(source(units), text, **kw)]


def decode(units: list[AccessUnit], codec: str = "h264") -> tuple[list[av.VideoFrame], av.CodecContext]:
    """Every picture of ``units``; one per unit for streams without B-frames."""
    ctx = av.CodecContext.create(codec, "r")
    frames = []
    for unit in units:
        packet = av.Packet(unit.data)
        packet.pts = unit.pts
        frames += ctx.decode(packet)
    return frames + ctx.decode(None), ctx


def luma(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray()[: frame.height].astype(np.int32)


async def test_r13_watermarked_video_keeps_frames_timestamps_keyframes_and_parameter_sets() -> None:
    units = camera(320, 240, 30, forced=(7, 19))
    out = await run(units)
    assert [(u.pts, u.dts, u.wallclock) for u in out] == [(u.pts, u.dts, u.wallclock) for u in units]
    assert [i for i, u in enumerate(out) if u.keyframe] == [0, 7, 19]
    frames, ctx = decode(out)
    assert len(frames) == len(units) and [f.pts for f in frames] == [u.pts for u in units]
    assert ctx.profile == "Constrained Baseline" and ctx.framerate == 25
    for u in out:
        nals = split_annexb(u.data)
        assert u.codec == H264 and len(u.params) == 2
        if u.keyframe:
            assert nals[:2] == list(u.params) and nal_type(H264, nals[-1]) == 5
        else:
            assert all(nal_type(H264, n) == 1 for n in nals)


async def test_r13_watermark_is_in_the_pixels_and_nowhere_else() -> None:
    width, height = 640, 360
    units = camera(width, height, 25, gop=10)
    source_frames, _ = decode(units)
    marked_frames, _ = decode(await run(units))
    pattern = Pattern(TEXT, width, height, 0.45)
    for before, after in zip(source_frames, marked_frames):
        alpha = pattern.alpha(before.pts)
        text = alpha >= 0.9 * alpha.max()
        clear = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        diff = np.abs(luma(before) - luma(after))
        assert text.mean() > 0.05 and clear.mean() > 0.5
        assert diff[text].mean() > 20, before.pts
        assert diff[clear].mean() < diff[text].mean() / 8, before.pts


def test_r13_watermark_is_tiled_across_any_crop_and_moves() -> None:
    width, height = 1280, 720
    pattern = Pattern(TEXT, width, height, 0.45)
    alpha = pattern.alpha(0)
    for y in range(0, height, height // 3):  # every ninth of the picture holds text
        for x in range(0, width, width // 3):
            assert (alpha[y : y + height // 3, x : x + width // 3] > 0).mean() > 0.03
    later = pattern.alpha(5 * 90_000)
    assert (alpha > 0).mean() == pytest.approx((later > 0).mean(), rel=0.05)
    assert ((alpha > 0) != (later > 0)).mean() > 0.02


async def test_r13_watermark_follows_a_changing_text() -> None:
    """A label re-read every picture (the current minute) is re-rendered when it changes: each
    output picture matches the source painted with its own label, not with the other one."""
    units = camera(320, 240, 20, gop=10)
    old, new = "grant g-9 15:04", "grant g-9 15:37"
    labels = iter([old if i < 10 else new for i in range(len(units))])
    marked, _ = decode(await run(units, text=lambda: next(labels)))
    source_frames, _ = decode(units)
    patterns = {t: Pattern(t, 320, 240, 0.45) for t in (old, new)}
    for i in (5, 15):
        pts = units[i].pts
        errors = {}
        for label, pattern in patterns.items():
            painted = luma(source_frames[i]).astype(np.uint8)
            pattern.paint(painted, pts)
            region = (patterns[old].alpha(pts) > 0) | (patterns[new].alpha(pts) > 0)
            errors[label] = np.abs(painted.astype(np.int32) - luma(marked[i]))[region].mean()
        shown, other = (old, new) if i < 10 else (new, old)
        assert errors[shown] * 2 < errors[other], errors


async def test_r13_b_frame_source_keeps_its_frame_rate_timestamps_and_keyframes(tmp_path: Path) -> None:
    units = ffmpeg_units(tmp_path, H264, "-c:v", "libx264", "-profile:v", "main", "-bf", "2", "-g", "15",
                         "-sc_threshold", "0")
    assert any(u.pts != u.dts for u in units)  # the source really reorders
    out = await run(units)
    assert [u.pts for u in out] == sorted(u.pts for u in units)
    assert [u.dts for u in out] == [u.dts for u in units]
    assert all(u.dts <= u.pts for u in out)
    assert {u.pts for u in out if u.keyframe} == {u.pts for u in units if u.keyframe}
    frames, ctx = decode(out)
    assert len(frames) == len(units) and ctx.framerate == 15


async def test_r13_h265_source_is_watermarked_into_h264(tmp_path: Path) -> None:
    units = ffmpeg_units(tmp_path, H265, "-c:v", "libx265", "-x265-params", "log-level=error:keyint=15")
    out = await run(units)
    frames, _ = decode(out)
    assert all(u.codec == H264 for u in out) and len(frames) == len(units)
    assert {u.pts for u in out if u.keyframe} == {u.pts for u in units if u.keyframe}


async def test_r13_unsupported_codec_is_refused_clearly() -> None:
    bogus = AccessUnit("mjpeg", 0, 0, True, b"\xff\xd8")
    with pytest.raises(ValueError, match="cannot watermark 'mjpeg'"):
        await run([bogus])


async def test_r13_undecodable_unit_is_counted_and_the_session_keeps_serving() -> None:
    units = camera(320, 240, 20, gop=10)
    garbage = AccessUnit(H264, units[5].pts, units[5].dts, False, os.urandom(400))
    metrics = Metrics()
    out = await run(units[:5] + [garbage] + units[6:], metrics=metrics)
    assert metrics.value("vsgw_watermark_undecodable_total") == 1
    assert [u.pts for u in out] == [u.pts for u in units if u.pts != garbage.pts]
    assert len(decode(out)[0]) == len(out)


def test_r13_chinese_text_font_coverage_matches_what_freetype_draws() -> None:
    """The reported missing characters are exactly those the chosen font draws as .notdef (with a
    CJK font installed there are none; without one the Chinese is reported, the rest still drawn)."""
    text = "亲属查看 grant g-7"
    face = face_for(text)
    assert face.path is not None
    font = ImageFont.truetype(face.path, 32)
    notdef = bytes(font.getmask("\U0010fffd"))
    drawn = {c for c in text if not c.isspace() and bytes(font.getmask(c)) != notdef}
    assert set(face.missing) == {c for c in text if not c.isspace()} - drawn
    assert {"g", "7"} <= drawn


async def test_r13_missing_cjk_glyphs_are_counted_once_per_session() -> None:
    text = "亲属查看 grant g-7"
    metrics = Metrics()
    out = await run(camera(320, 240, 12, gop=6), text=text, metrics=metrics)
    assert len(out) == 12
    assert metrics.value("vsgw_watermark_missing_glyphs_total") == (1 if face_for(text).missing else 0)


async def test_r13_watermarking_never_blocks_the_event_loop() -> None:
    """The source yields without ever awaiting, so only the worker thread gives the loop a turn;
    a ticker must keep its period throughout (decoding+encoding 40 720p pictures on the loop
    would stall it for the whole run)."""
    units = camera(1280, 720, 40, gop=20)
    loop = asyncio.get_running_loop()
    period = 0.01
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(loop.time())
            await asyncio.sleep(period)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = loop.time()
    out = await run(units)
    end = loop.time()
    done.set()
    await task
    gaps = np.diff([start, *[t for t in ticks if t > start], end])
    assert len(out) == len(units)
    assert end - start > 10 * period  # the run was long enough to matter
    assert gaps.max() < 5 * period


async def test_r13_watermarker_behind_a_live_reader_skips_to_the_next_keyframe() -> None:
    """The stream's bounded reader is the session's queue: written faster than the worker can
    re-encode, it drops to a keyframe and what comes out still decodes cleanly."""
    units = camera(320, 240, 100, gop=10)
    idle = asyncio.Event()

    async def nothing() -> AsyncIterator[AccessUnit]:
        await idle.wait()
        yield units[0]

    stream = Stream("cam", nothing)
    reader = stream.subscribe(InternalAccess("watermark test"), "relative", ReaderLimits(max_delay=0.2))

    async def writer() -> None:
        for unit in units:
            stream.write(unit)
            await asyncio.sleep(0)
        reader.close()

    task = asyncio.create_task(writer())
    out = [u async for u in watermarked(reader, TEXT)]
    await task
    await stream.close()
    assert reader.skips > 0 and 0 < len(out) < len(units)
    index = {u.pts: i for i, u in enumerate(units)}
    positions = [index[u.pts] for u in out]
    assert positions == sorted(positions) and out[0].keyframe
    for prev, (pos, unit) in zip(positions, zip(positions[1:], out[1:])):
        assert unit.keyframe == units[pos].keyframe
        if pos != prev + 1:
            assert unit.keyframe  # after a gap the session resumes at a keyframe
    assert len(decode(out)[0]) == len(out)
