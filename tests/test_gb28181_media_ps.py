"""GB/T 28181 MPEG-PS demuxer and muxer (R1): round trips decoded by FFmpeg, quirks, garbage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import random
import struct
import subprocess

import av
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from adapters.gb28181.ps import PsDemuxer, mux_ps, pack_header
from adapters.synthetic import PatternEncoder, PatternSpec
from gateway.media import H264, H265, AccessUnit
from gateway.media.nal import ParamTracker, is_param_set, nal_type, split_annexb

W, H = 352, 288


@pytest.fixture(scope="module")
def h264_units() -> list[AccessUnit]:
    encoder = PatternEncoder(PatternSpec("ps-test", W, H, 25, 12, 400_000, noise=16))
    units: list[AccessUnit] = []
    while len(units) < 30:
        units += encoder.encode()
    return units


@pytest.fixture(scope="module")
def h265_units(tmp_path_factory: pytest.TempPathFactory) -> list[AccessUnit]:
    """Real H.265 from libx265 (with B-frames, so PTS != DTS), split into access units by FFmpeg."""
    path = Path(tmp_path_factory.mktemp("hevc")) / "clip.h265"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={W}x{H}:rate=25", "-t", "1",
         "-c:v", "libx265", "-x265-params", "keyint=10:log-level=error", "-pix_fmt", "yuv420p",
         "-f", "hevc", str(path)],
        check=True,
    )
    parser = av.CodecContext.create("hevc", "r")
    packets = parser.parse(path.read_bytes()) + parser.parse(None)
    tracker = ParamTracker(H265)
    units = []
    for i, packet in enumerate(packets):
        data = bytes(packet)
        key, _ = tracker.observe(split_annexb(data))
        units.append(AccessUnit(H265, i * 3600 + 7200, i * 3600, key, data, tracker.params))
    return units


def mux_all(units: list[AccessUnit]) -> bytes:
    return b"".join(mux_ps(u, u.dts) for u in units)


def demux_chunked(data: bytes, seed: int, demuxer: PsDemuxer | None = None, top: int = 3000) -> list[AccessUnit]:
    demuxer = demuxer or PsDemuxer()
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        k = rnd.randint(1, top)
        out += demuxer.feed(data[i:i + k])
        i += k
    return out + demuxer.flush()


def decode(codec: str, units: list[AccessUnit]) -> list[av.VideoFrame]:
    ctx = av.CodecContext.create("hevc" if codec == H265 else "h264", "r")
    frames = []
    for unit in units:
        frames += ctx.decode(av.Packet(unit.data))
    return frames + ctx.decode(None)


def test_r1_ps_h264_round_trip_in_random_chunks_decodes_at_source_size(h264_units: list[AccessUnit]) -> None:
    out = demux_chunked(mux_all(h264_units), seed=1)
    assert [u.data for u in out] == [u.data for u in h264_units]
    assert [(u.pts, u.dts, u.keyframe) for u in out] == [(u.pts, u.dts, u.keyframe) for u in h264_units]
    assert all(u.codec == H264 and len(u.params) == 2 for u in out)
    frames = decode(H264, out)
    assert len(frames) == len(h264_units)
    assert {(f.width, f.height) for f in frames} == {(W, H)}


def test_r1_ps_h265_round_trip_with_dts_decodes_at_source_size(h265_units: list[AccessUnit]) -> None:
    demuxer = PsDemuxer()
    out = demux_chunked(mux_all(h265_units), seed=2, demuxer=demuxer, top=500)
    assert demuxer.psm_seen and demuxer.codec == H265
    assert [u.data for u in out] == [u.data for u in h265_units]
    assert [(u.pts, u.dts) for u in out] == [(u.pts, u.dts) for u in h265_units]
    assert all(len(u.params) == 3 for u in out)  # VPS, SPS, PPS
    frames = decode(H265, out)
    assert len(frames) == len(h265_units)
    assert {(f.width, f.height) for f in frames} == {(W, H)}


def test_r1_ps_without_psm_or_system_header_guesses_codec(h265_units: list[AccessUnit]) -> None:
    """Devices that never send a PSM: the codec comes from the parameter-set NAL headers."""
    bare = b"".join(mux_ps(replace(u, keyframe=False), u.dts) for u in h265_units)
    assert b"\x00\x00\x01\xbc" not in bare
    demuxer = PsDemuxer()
    out = demux_chunked(bare, seed=3, demuxer=demuxer)
    assert not demuxer.psm_seen
    assert {u.codec for u in out} == {H265}
    assert len(decode(H265, out)) == len(h265_units)


def test_r1_ps_keyframes_get_parameter_sets_the_device_sent_only_once(h264_units: list[AccessUnit]) -> None:
    stripped = [h264_units[0]] + [
        replace(u, data=b"".join(b"\x00\x00\x00\x01" + n for n in split_annexb(u.data) if not is_param_set(H264, n)))
        for u in h264_units[1:]
    ]
    out = demux_chunked(mux_all(stripped), seed=4)
    keys = [u for u in out if u.keyframe]
    assert len(keys) >= 3
    for unit in keys:
        assert [nal_type(H264, n) for n in split_annexb(unit.data)[:2]] == [7, 8]
    # a late joiner that starts at the second keyframe decodes it
    second = out.index(keys[1])
    assert len(decode(H264, out[second:second + 1])) == 1


def test_r1_ps_units_larger_than_one_pes_span_several(h264_units: list[AccessUnit]) -> None:
    big = replace(h264_units[0], data=h264_units[0].data + b"\x00\x00\x01\x0c" + b"\xff" * 150_000)  # filler NAL
    ps = mux_ps(big, 0)
    assert ps.count(b"\x00\x00\x01\xe0") == 3  # split at 65,400 bytes
    out = demux_chunked(ps + mux_ps(h264_units[1], 3600), seed=5)
    assert out[0].data == big.data


def test_r1_ps_pes_with_length_zero_and_pack_stuffing(h264_units: list[AccessUnit]) -> None:
    def zero_length(unit: AccessUnit) -> bytes:
        hdr = bytearray(pack_header(unit.dts))
        hdr[13] = 0xF8 | 3  # three stuffing bytes
        pes = mux_ps(replace(unit, keyframe=False), 0)[14:]
        return bytes(hdr) + b"\xff\xff\xff" + pes[:4] + b"\x00\x00" + pes[6:]
    data = b"".join(zero_length(u) for u in h264_units[:10])
    out = demux_chunked(data, seed=6, top=700)
    assert [u.data for u in out] == [u.data for u in h264_units[:10]]


def test_r1_ps_mpeg1_pes_headers_are_read(h264_units: list[AccessUnit]) -> None:
    def mpeg1(unit: AccessUnit) -> bytes:
        ts = mux_ps(unit, 0)
        pts = ts[ts.index(b"\x00\x00\x01\xe0") + 9:][:5]
        body = b"\xff\xff" + b"\x40\x20" + pts + unit.data  # stuffing, STD buffer, PTS
        return pack_header(unit.dts) + b"\x00\x00\x01\xe0" + struct.pack("!H", len(body)) + body
    out = demux_chunked(b"".join(mpeg1(u) for u in h264_units[:12]), seed=7)
    assert [(u.pts, u.data) for u in out] == [(u.pts, u.data) for u in h264_units[:12]]


def test_r1_ps_pts_wrap_stays_monotonic(h264_units: list[AccessUnit]) -> None:
    base = (1 << 33) - 5 * 3600
    shifted = [replace(u, pts=(base + i * 3600) % (1 << 33), dts=(base + i * 3600) % (1 << 33))
               for i, u in enumerate(h264_units[:12])]
    out = demux_chunked(mux_all(shifted), seed=8)
    assert [u.pts for u in out] == [base + i * 3600 for i in range(12)]


def test_r1_ps_garbage_and_truncation_recover_and_are_counted(h264_units: list[AccessUnit]) -> None:
    packs = [mux_ps(u, u.dts) for u in h264_units]
    rnd = random.Random(9)
    noisy = []
    for i, pack in enumerate(packs):
        if i in (5, 17):
            noisy.append(bytes(rnd.randrange(256) for _ in range(3000)))  # garbage between packs
        if i == 9:
            pack = pack[: len(pack) // 2]  # truncated mid-PES: the rest never arrives
        noisy.append(pack)
    demuxer = PsDemuxer()
    out = demux_chunked(b"".join(noisy), seed=10, demuxer=demuxer)
    assert demuxer.errors >= 3
    assert demuxer.dropped >= 1
    good = {u.data for u in h264_units}
    assert all(u.data in good for u in out)  # nothing corrupt comes out
    assert len(out) >= len(h264_units) - 4
    assert h264_units[-1].data == out[-1].data
    assert len(decode(H264, out)) == len(out)


def test_r1_ps_discontinuity_drops_the_damaged_unit(h264_units: list[AccessUnit]) -> None:
    demuxer = PsDemuxer()
    ps = mux_ps(h264_units[0], 0)
    out = demuxer.feed(ps[:3000])
    demuxer.discontinuity()
    out += demuxer.feed(b"".join(mux_ps(u, u.dts) for u in h264_units[1:5])) + demuxer.flush()
    assert [u.data for u in out] == []  # units before the first complete keyframe are undecodable
    assert demuxer.dropped >= 1
    out = demuxer.feed(mux_all(h264_units[12:15])) + demuxer.flush()
    assert [u.data for u in out] == [u.data for u in h264_units[12:15]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000), st.lists(st.integers(1, 600), max_size=20))
def test_r1_ps_fuzz_never_raises_and_chunking_does_not_matter(data: bytes, cuts: list[int]) -> None:
    whole = PsDemuxer(codec_hint=H264)
    expected = whole.feed(data) + whole.flush()
    split = PsDemuxer(codec_hint=H264)
    got, i = [], 0
    for k in cuts + [len(data)]:
        got += split.feed(data[i:i + k])
        i += k
    got += split.feed(data[i:]) + split.flush()
    assert [(u.pts, u.data) for u in got] == [(u.pts, u.data) for u in expected]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_r1_ps_fuzz_mutated_stream_same_units_however_split(h264_units: list[AccessUnit], data: st.DataObject) -> None:
    stream = bytearray(mux_all(h264_units[:6]))
    for _ in range(data.draw(st.integers(0, 6))):
        at = data.draw(st.integers(0, len(stream) - 1))
        stream[at] = data.draw(st.integers(0, 255))
    at, cut = data.draw(st.integers(0, len(stream))), data.draw(st.integers(0, 500))
    stream = stream[:at] + data.draw(st.binary(max_size=300)) + stream[at + cut:]
    seed = data.draw(st.integers(0, 1000))
    one = PsDemuxer()
    expected = one.feed(bytes(stream)) + one.flush()
    got = demux_chunked(bytes(stream), seed=seed, top=2000)
    assert [(u.pts, u.data) for u in got] == [(u.pts, u.data) for u in expected]


def test_r1_ps_stream_cut_inside_a_pes_drops_only_that_unit(h264_units: list[AccessUnit]) -> None:
    data = mux_all(h264_units[:5])
    demuxer = PsDemuxer()
    out = demuxer.feed(data[:-100]) + demuxer.flush()
    assert [u.data for u in out] == [u.data for u in h264_units[:4]]
    assert demuxer.dropped == 1


@pytest.mark.parametrize("codec", [H264, H265])
def test_r1_ps_muxer_output_is_read_by_ffmpeg(codec: str, h264_units: list[AccessUnit],
                                              h265_units: list[AccessUnit]) -> None:
    """FFmpeg's own PS demuxer finds the stream type in our PSM and decodes every picture."""
    import io

    units = h264_units if codec == H264 else h265_units
    with av.open(io.BytesIO(mux_all(units)), format="mpeg") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == ("h264" if codec == H264 else "hevc")
        frames = list(container.decode(stream))
    assert len(frames) == len(units)
    assert {(f.width, f.height) for f in frames} == {(W, H)}
