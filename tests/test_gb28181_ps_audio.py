"""Audio in GB/T 28181 PS (R1): G.711A/U and AAC recognised from the PSM and demuxed as audio units
beside the pictures; other audio types counted and logged once; FFmpeg reads the muxed audio."""

from __future__ import annotations

import logging
import random
import struct
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from adapters.gb28181.ps import PsDemuxer, mux_ps, pack_header
from adapters.gb28181.psmux import _crc32_mpeg
from adapters.gb28181.simaudio import TONE_HZ, Tone
from adapters.synthetic import PatternEncoder, PatternSpec
from gateway.media import AAC, H264, PCMA, PCMU, AccessUnit

W, H = 320, 240


@pytest.fixture(scope="module")
def pictures() -> list[AccessUnit]:
    encoder = PatternEncoder(PatternSpec("ps-audio", W, H, 25, 10, 300_000))
    units: list[AccessUnit] = []
    while len(units) < 25:
        units += encoder.encode()
    return units[:25]


def with_audio(pictures: list[AccessUnit], codec: str) -> list[AccessUnit]:
    """Each picture followed by 40 ms of tone (320 samples), as a device interleaves them."""
    tone, out = Tone(codec), []
    for unit in pictures:
        out.append(unit)
        out.append(AccessUnit(codec, unit.dts, unit.dts, False, tone.next(320)))
    return out


def demux(data: bytes, demuxer: PsDemuxer, seed: int = 1) -> list[AccessUnit]:
    rnd, out, i = random.Random(seed), [], 0
    while i < len(data):
        k = rnd.randint(1, 1500)
        out += demuxer.feed(data[i:i + k])
        i += k
    return out + demuxer.flush()


def psm_with_audio_type(stype: int) -> bytes:
    es_map = bytes((0x1B, 0xE0, 0, 0, stype, 0xC0, 0, 0))
    psm = b"\x00\x00\x01\xbc" + struct.pack("!H", 6 + len(es_map) + 4) + b"\xe0\xff\x00\x00"
    psm += struct.pack("!H", len(es_map)) + es_map
    return psm + struct.pack("!I", _crc32_mpeg(psm))


@pytest.mark.parametrize("codec", [PCMA, PCMU])
def test_r1_ps_g711_audio_is_demuxed_beside_the_pictures(pictures: list[AccessUnit], codec: str) -> None:
    sent = with_audio(pictures, codec)
    demuxer = PsDemuxer()
    data = b"".join(mux_ps(u, u.dts, codec) for u in sent)
    out = demux(data, demuxer)
    audio = [u for u in out if u.is_audio]
    video = [u for u in out if not u.is_audio]
    assert [u.data for u in video] == [u.data for u in pictures]
    assert {u.codec for u in video} == {H264}
    assert [(u.codec, u.pts, u.data) for u in audio] == [(u.codec, u.pts, u.data) for u in sent if u.is_audio]
    assert not any(u.keyframe for u in audio)
    assert demuxer.audio_units == len(pictures) and demuxer.audio_unsupported == 0
    assert demuxer.codec == H264  # the audio never changes what the video is


def test_r1_ps_aac_audio_keeps_its_adts_frames(pictures: list[AccessUnit]) -> None:
    adts = bytes((0xFF, 0xF1, 0x6C, 0x40, 0x01, 0x7F, 0xFC)) + b"\x21" * 4  # 11-byte frame, 8 kHz
    assert ((adts[3] & 3) << 11 | adts[4] << 3 | adts[5] >> 5) == len(adts)
    sent = [pictures[0], AccessUnit(AAC, 0, 0, False, adts * 2), pictures[1]]
    out = demux(b"".join(mux_ps(u, u.dts, AAC) for u in sent), PsDemuxer())
    assert [(u.codec, u.data) for u in out if u.is_audio] == [(AAC, adts * 2)]


def test_r1_ps_audio_pes_without_pts_follows_the_previous_by_its_samples(pictures: list[AccessUnit]) -> None:
    first = AccessUnit(PCMA, 7200, 7200, False, b"\xd5" * 160)
    pes = mux_ps(replace(first, data=b"\x55" * 80), 0)[14:]
    bare = pes[:6] + b"\x80\x00\x00" + pes[14:]  # the same PES with no PTS
    bare = bare[:4] + struct.pack("!H", len(bare) - 6) + bare[6:]
    data = mux_ps(pictures[0], 0) + mux_ps(first, 7200) + pack_header(7200) + bare
    out = [u for u in demux(data, PsDemuxer()) if u.is_audio]
    assert [(u.pts, len(u.data)) for u in out] == [(7200, 160), (7200 + 160 * 90_000 // 8000, 80)]


@pytest.mark.parametrize("stype,name", [(0x92, "G.722"), (0x93, "G.723.1"), (0x99, "G.729"), (0x80, "0x80")])
def test_r1_ps_other_audio_types_are_counted_and_logged_once(
        pictures: list[AccessUnit], stype: int, name: str, caplog: pytest.LogCaptureFixture) -> None:
    demuxer = PsDemuxer()
    parts = []
    for i, unit in enumerate(pictures[:10]):
        ps = mux_ps(unit, unit.dts)
        if unit.keyframe:  # the PSM names this audio type instead of G.711A
            start = ps.index(b"\x00\x00\x01\xbc")
            end = start + 6 + struct.unpack_from("!H", ps, start + 4)[0]
            ps = ps[:start] + psm_with_audio_type(stype) + ps[end:]
        parts.append(ps + mux_ps(AccessUnit(PCMA, unit.dts, unit.dts, False, b"\x00" * 160), unit.dts))
    with caplog.at_level(logging.INFO, logger="adapters.gb28181.ps"):
        out = demux(b"".join(parts), demuxer)
    assert not any(u.is_audio for u in out)
    assert len(out) == 10 and demuxer.errors == 0
    assert demuxer.audio_unsupported == 10
    lines = [r.getMessage() for r in caplog.records if "audio" in r.getMessage()]
    assert len(lines) == 1 and name in lines[0]


def test_r1_ps_audio_before_the_first_psm_is_counted_not_guessed(pictures: list[AccessUnit]) -> None:
    demuxer = PsDemuxer()
    tone = AccessUnit(PCMA, 0, 0, False, Tone(PCMA).next(160))
    out = demux(mux_ps(tone, 0) + b"".join(mux_ps(u, u.dts) for u in pictures[:3]) + mux_ps(replace(tone, pts=9000, dts=9000), 9000), demuxer)
    assert [u.pts for u in out if u.is_audio] == [9000]
    assert demuxer.audio_unsupported == 1


def test_r1_ps_with_g711a_tone_is_read_by_ffmpeg_as_alaw_at_the_tone_pitch(
        pictures: list[AccessUnit], tmp_path: Path) -> None:
    """An independent reader of the muxer and the simulator's tone: FFmpeg's PS demuxer maps
    stream type 0x90 to A-law; the decoded samples peak at the tone's frequency."""
    path = tmp_path / "tone.ps"
    path.write_bytes(b"".join(mux_ps(u, u.dts) for u in with_audio(pictures, PCMA)))
    with av.open(str(path), format="mpeg") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "pcm_alaw"
        samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(stream)])
    assert len(samples) >= 0.9 * 320 * len(pictures)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    assert abs(np.argmax(spectrum) * 8000 / len(samples) - TONE_HZ) < 20
