"""RTSP bad input and failures (issue 2 "Bad input"; R1, R4/R18: no credential leaks; R15: online state).

A real GStreamer rtsp-server plays the camera; it is killed and restarted to simulate outages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import contextlib
import logging
import signal
import time

import aiohttp
import pytest

from adapters.rtsp import RtspAdapter, RtspConfig, RtspError, UnsupportedCodec
from adapters.rtsp.describe import describe
from adapters.rtsp.target import parse_target
from gateway.config import CameraConfig
from tests.conftest import auth, free_port, synthetic
from tests.rtsp_server import RtspServer
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")

USER, PASSWORD = "operator", "Corr3ct-Horse-77"
WRONG = "Wr0ng-Battery-91"


@pytest.fixture(scope="module")
def server() -> Iterator[RtspServer]:
    with RtspServer(USER, PASSWORD) as srv:
        yield srv


def rtsp(cid: str, url: str, **kw: str) -> dict[str, str]:
    return {"id": cid, "kind": "rtsp", "url": url, **kw}


async def eventually(cond: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll a condition with a deadline (state changes here have no event to await)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def public_texts(gw) -> str:  # noqa: ANN001
    """Everything an API client can read about the cameras, plus the metrics."""
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession(headers=auth()) as http:
        texts = []
        for path in ["/api/cameras", "/metrics", *(f"/api/cameras/{cid}" for cid in gw.registry.channels)]:
            async with http.get(base + path) as r:
                assert r.status == 200
                texts.append(await r.text())
    return "\n".join(texts)


async def test_r18_wrong_password_refused_clearly_and_the_password_appears_nowhere(
    make_gateway, server, caplog  # noqa: ANN001
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = await make_gateway(cameras=[
        rtsp("in-url", server.url("/h264", password=WRONG)),
        rtsp("in-keys", server.url("/h264", user="", password=""), username=USER, password=WRONG),
    ], rtsp={"probe_interval": 0.2})
    readers = [gw.hub.subscribe(TEST_READER, cid) for cid in ("in-url", "in-keys")]
    for cid in ("in-url", "in-keys"):
        await eventually(lambda cid=cid: gw.hub.streams[cid].last_error, f"{cid} to fail")
        error = gw.hub.streams[cid].last_error
        assert error == "Unauthorized: 401 Unauthorized: check username/password"
        channel = gw.registry.channels[cid]
        assert not channel.online and channel.extra["error"] == "401 Unauthorized: check username/password"
        assert channel.extra["url"] == f"rtsp://127.0.0.1:{server.port}/h264"
    assert gw.metrics.value("vsgw_rtsp_rejected_total", reason="unauthorized") >= 2
    seen = await public_texts(gw) + caplog.text + repr(gw.registry.channels)
    assert "401 Unauthorized" in caplog.text, "the failure is logged"
    assert WRONG not in seen and f"{USER}:" not in seen
    for r in readers:
        r.close()


async def test_r1_unreachable_port_gives_clear_error_and_channel_offline(make_gateway) -> None:  # noqa: ANN001
    port = free_port()
    gw = await make_gateway(cameras=[rtsp("gone", f"rtsp://127.0.0.1:{port}/h264")], rtsp={"probe_interval": 0})
    reader = gw.hub.subscribe(TEST_READER, "gone")
    await eventually(lambda: gw.hub.streams["gone"].last_error, "the open to fail")
    assert gw.hub.streams["gone"].last_error == f"CannotConnect: cannot connect to 127.0.0.1:{port}: connection refused"
    assert not gw.registry.channels["gone"].online
    assert gw.metrics.value("vsgw_rtsp_rejected_total", reason="unreachable") >= 1
    reader.close()


async def test_r1_unsupported_codec_is_refused_with_a_clear_error(server) -> None:  # noqa: ANN001
    adapter = RtspAdapter([CameraConfig(id="jpeg", kind="rtsp", url=server.url("/mjpeg"))], RtspConfig(probe_interval=0))
    with pytest.raises(UnsupportedCodec, match=r"^codec mjpeg is not supported; H\.264 or H\.265 only$"):
        async with contextlib.aclosing(adapter.open("jpeg")) as stream:
            async for _ in stream:
                pass
    assert adapter.channels()[0].extra["error"] == "codec mjpeg is not supported; H.264 or H.265 only"


async def test_r15_idle_cameras_are_probed_so_the_list_shows_real_state(make_gateway) -> None:  # noqa: ANN001
    with RtspServer(USER, PASSWORD) as srv:
        gw = await make_gateway(cameras=[
            rtsp("ok", srv.url("/h264")), rtsp("locked", srv.url("/h264", password=WRONG)),
            rtsp("hevc", srv.url("/h265"), transport="udp"), rtsp("jpeg", srv.url("/mjpeg")),
        ], rtsp={"probe_interval": 0.2})
        ch = gw.registry.channels
        await eventually(lambda: ch["ok"].online and ch["hevc"].online, "the probe to find the cameras online")
        await eventually(lambda: "error" in ch["locked"].extra and "error" in ch["jpeg"].extra, "probe errors")
        assert ch["locked"].extra["error"] == "401 Unauthorized: check username/password"
        assert ch["jpeg"].extra["error"] == "codec mjpeg is not supported; H.264 or H.265 only"
        assert not gw.hub.streams, "probing pulls no media"
        assert (ch["ok"].codec, ch["hevc"].codec) == ("h264", "h265")
        srv.stop()
        await eventually(lambda: not ch["ok"].online, "the probe to notice the camera is gone")
        assert ch["ok"].extra["error"] == f"cannot connect to 127.0.0.1:{srv.port}: connection refused"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_r15_camera_killed_mid_stream_goes_offline_and_the_hub_recovers_it(make_gateway, transport) -> None:  # noqa: ANN001
    with RtspServer() as srv:
        gw = await make_gateway(cameras=[rtsp("cam", srv.url("/h264"), transport=transport)], rtsp={"probe_interval": 0})
        reader = gw.hub.subscribe(TEST_READER, "cam")
        assert (await asyncio.wait_for(reader.get(), 15)).keyframe
        channel, stream = gw.registry.channels["cam"], gw.hub.streams["cam"]
        assert channel.online
        srv.stop()
        await eventually(lambda: not channel.online, "the channel to go offline")
        assert stream.restarts >= 1 and "127.0.0.1" in channel.extra["error"]
        restarted = time.time()
        srv.start()
        async def first_new_unit():  # noqa: ANN202
            while (unit := await reader.get()).wallclock < restarted:
                pass
            return unit
        unit = await asyncio.wait_for(first_new_unit(), 20)
        assert unit.keyframe and channel.online and "error" not in channel.extra
        reader.close()


async def test_bad_rtsp_urls_do_not_stop_the_other_cameras(make_gateway, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    gw = await make_gateway(cameras=[
        synthetic("good"),
        rtsp("wrong-scheme", f"http://admin:{WRONG}@127.0.0.1/stream"),
        rtsp("wrong-port", f"rtsp://admin:{WRONG}@127.0.0.1:99999/stream"),
        rtsp("wrong-transport", "rtsp://127.0.0.1/stream", transport="sctp"),
    ], rtsp={"probe_interval": 0.2})
    bad = gw.hub.subscribe(TEST_READER, "wrong-scheme")
    good = gw.hub.subscribe(TEST_READER, "good")
    units = [await asyncio.wait_for(good.get(), 10) for _ in range(10)]
    assert units[0].keyframe and len(units) == 10
    await eventually(lambda: gw.hub.streams["wrong-scheme"].last_error, "the bad camera to fail")
    assert "url must look like rtsp://host[:port]/path" in gw.hub.streams["wrong-scheme"].last_error
    assert "invalid port" in gw.registry.channels["wrong-port"].extra["error"]
    assert "transport must be 'tcp' or 'udp'" in gw.registry.channels["wrong-transport"].extra["error"]
    assert not any(gw.registry.channels[c].online for c in ("wrong-scheme", "wrong-port", "wrong-transport"))
    assert gw.metrics.value("vsgw_rtsp_rejected_total", reason="bad_url") >= 3
    assert WRONG not in await public_texts(gw) + caplog.text
    bad.close()
    good.close()


async def test_r15_camera_that_hangs_silently_is_declared_lost_after_the_read_timeout(make_gateway) -> None:  # noqa: ANN001
    with RtspServer() as srv:
        gw = await make_gateway(cameras=[rtsp("cam", srv.url("/h264"))], rtsp={"probe_interval": 0, "read_timeout": 1.0})
        reader = gw.hub.subscribe(TEST_READER, "cam")
        assert (await asyncio.wait_for(reader.get(), 15)).keyframe
        channel = gw.registry.channels["cam"]
        srv.proc.send_signal(signal.SIGSTOP)  # frozen: the TCP connection stays open, nothing arrives
        try:
            frozen = time.monotonic()
            await eventually(lambda: not channel.online, "the silent camera to be declared offline", timeout=10)
            assert time.monotonic() - frozen < 6
            assert gw.hub.streams["cam"].last_error == f"StreamLost: no data from 127.0.0.1:{srv.port} for 1 s"
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        await eventually(lambda: channel.online, "the camera to come back after it thaws")
        reader.close()


async def test_a_port_that_does_not_speak_rtsp_gets_a_clear_error_from_probe_and_pull() -> None:
    async def http_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(http_only, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cam = CameraConfig(id="web", kind="rtsp", url=f"rtsp://admin:{WRONG}@127.0.0.1:{port}/live")
    try:
        with pytest.raises(RtspError, match=f"^127.0.0.1:{port} did not answer like an RTSP server$"):
            await describe(parse_target(cam))
        adapter = RtspAdapter([cam], RtspConfig(probe_interval=0, open_timeout=3))
        with pytest.raises(RtspError) as err:
            async with contextlib.aclosing(adapter.open("web")) as stream:
                async for _ in stream:
                    pass
        assert str(err.value).startswith(f"cannot open the stream from 127.0.0.1:{port}: ") and WRONG not in str(err.value), str(err.value)
    finally:
        server.close()
        await server.wait_closed()
