"""RTSP pull against a real GStreamer rtsp-server (R1: pull RTSP cameras; issue 2 item 5).

Each test decodes what the adapter delivered with FFmpeg (PyAV) at the served resolution.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib

import av
import pytest

from adapters.rtsp import RtspAdapter, RtspConfig
from gateway.config import CameraConfig
from gateway.media import CLOCK_RATE, H264, H265, AccessUnit
from gateway.media.nal import nal_type, split_annexb
from tests.rtsp_server import FPS, HEIGHT, WIDTH, RtspServer

USER, PASSWORD = "officer", "Pa55:w@rd/x"


@pytest.fixture(scope="module")
def digest_server() -> Iterator[RtspServer]:
    with RtspServer(USER, PASSWORD) as server:
        yield server


async def pull(url: str, transport: str = "tcp", count: int = 12, **cam: str) -> list[AccessUnit]:
    adapter = RtspAdapter([CameraConfig(id="cam", kind="rtsp", url=url, transport=transport, **cam)],
                          RtspConfig(probe_interval=0))
    units: list[AccessUnit] = []
    async with contextlib.aclosing(adapter.open("cam")) as stream:
        async for unit in stream:
            units.append(unit)
            if len(units) == count:
                break
    return units


def decode(units: list[AccessUnit]) -> list[av.VideoFrame]:
    ctx = av.CodecContext.create("hevc" if units[0].codec == H265 else "h264", "r")
    frames = [f for u in units for f in ctx.decode(av.Packet(u.data))]
    return frames + list(ctx.decode(None))


def assert_well_formed(units: list[AccessUnit], codec: str) -> None:
    first = units[0]
    assert first.codec == codec and first.keyframe, "the first unit out is a keyframe"
    assert all(u.data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01")) for u in units), "Annex-B"
    types = {nal_type(codec, n) for n in split_annexb(first.data)}
    assert {7, 8} <= types if codec == H264 else {32, 33, 34} <= types, "keyframe carries its parameter sets"
    steps = {b.pts - a.pts for a, b in zip(units, units[1:])}
    assert steps <= {CLOCK_RATE // FPS}, f"90 kHz timestamps at {FPS} fps, got steps {steps}"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_r1_h264_pulled_with_digest_auth_decodes_at_served_resolution(digest_server, transport) -> None:  # noqa: ANN001
    units = await pull(digest_server.url("/h264"), transport)
    assert_well_formed(units, H264)
    assert [nal_type(H264, p) for p in units[0].params] == [7, 8]
    frames = decode(units)
    assert len(frames) >= len(units) - 2
    assert {(f.width, f.height) for f in frames} == {(WIDTH, HEIGHT)}


async def test_r1_h265_over_tcp_delivers_vps_sps_pps_and_decodes(digest_server) -> None:  # noqa: ANN001
    units = await pull(digest_server.url("/h265"), "tcp")
    assert_well_formed(units, H265)
    assert [nal_type(H265, p) for p in units[0].params] == [32, 33, 34]
    frames = decode(units)
    assert len(frames) >= len(units) - 2
    assert {(f.width, f.height) for f in frames} == {(WIDTH, HEIGHT)}


async def test_r1_credentials_from_config_keys_override_url_userinfo(digest_server) -> None:  # noqa: ANN001
    url = digest_server.url("/h264", user="", password="")
    assert "@" not in url
    units = await pull(url, count=3, username=USER, password=PASSWORD)
    assert units[0].keyframe


async def test_r1_basic_auth_camera_is_pulled() -> None:
    with RtspServer("viewer", "basic-secret", basic=True) as server:
        units = await pull(server.url("/h264"), count=3)
    assert units[0].keyframe and decode(units)[0].width == WIDTH
