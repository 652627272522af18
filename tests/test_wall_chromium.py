"""The video wall in real headless Chromium (R1, R12): WHEP playback decoded in the page, the
2×2 layout, instant start mid-GOP, stalled viewers, refusals. Chromium is Debian's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import os
import signal
import subprocess
import sys
from typing import ClassVar

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

from gateway.bus import Event
from gateway.policy import Decision
from tests.conftest import TOKEN, synthetic

pytestmark = pytest.mark.browser
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns"]
WEBRTC = {"host_addresses": ["127.0.0.1"]}


class _Wake(Event):
    """Makes the wall's open /api/events responses write once, so they notice the browser left
    (the SSE handler otherwise holds the gateway's shutdown until its 15 s keepalive)."""

    topic: ClassVar[str] = "channel.test-wake"


OPENED: list = []


@pytest_asyncio.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()
            while OPENED:
                OPENED.pop().bus.publish(_Wake())
                await asyncio.sleep(0)


async def open_wall(page: Page, gw, query: str = "") -> None:  # noqa: ANN001
    OPENED.append(gw)
    await page.goto(f"http://127.0.0.1:{gw.http_port}/wall/{query}")


async def until(page: Page, predicate, timeout: float = 15.0):  # noqa: ANN001, ANN201
    """Poll the wall's tiles until ``predicate(tiles)`` holds; returns the tiles."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        tiles = await page.evaluate("window.vsgwWall ? window.vsgwWall.tiles() : []")
        if tiles and predicate(tiles):
            return tiles
        assert loop.time() < deadline, tiles
        await asyncio.sleep(0.1)


async def test_r1_wall_2x2_shows_four_live_cameras_decoded(make_gateway, page: Page) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic(f"cam{i}", name=f"路口 {i}") for i in range(1, 5)], webrtc=WEBRTC)
    await open_wall(page, gw, f"?token={TOKEN}")
    tiles = await until(page, lambda ts: len(ts) == 4 and all(t["decoded"] >= 10 and t["frames"] >= 10 for t in ts))
    assert sorted(t["camera"] for t in tiles) == ["cam1", "cam2", "cam3", "cam4"]
    assert {(t["width"], t["height"]) for t in tiles} == {(320, 240)}
    assert "token" not in page.url  # taken from the URL into storage, not left in the address bar
    names = await page.locator(".tile .name").all_inner_texts()
    assert sorted(names) == ["路口 1", "路口 2", "路口 3", "路口 4"]
    await page.click("#lang")
    assert await page.locator("#search").get_attribute("placeholder") in ("Search cameras…", "搜索摄像机…")


async def test_wall_joining_mid_gop_decodes_before_the_next_keyframe(make_gateway, page: Page) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("slow-gop", gop=100)], webrtc=WEBRTC)  # GOP 4 s
    warm = gw.hub.subscribe("slow-gop", name="warm")
    stream = gw.hub.streams["slow-gop"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(stream.gop) < 25:  # 1 s into the GOP: the next keyframe is 3 s away
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    await open_wall(page, gw, f"?token={TOKEN}")
    await page.evaluate("window.vsgwWall.setLayout(1)")
    joined = loop.time()
    tiles = await until(page, lambda ts: ts[0]["decoded"] >= 1, timeout=10)
    keyframes_seen = stream.stats().keyframe_interval  # None: no second keyframe happened yet
    assert loop.time() - joined < 2.5 and keyframes_seen is None, (tiles, keyframes_seen)
    assert tiles[0]["firstFrameMs"] < 1500
    warm.close()


async def test_stalled_viewers_do_not_slow_the_wall(make_gateway, page: Page) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("busy")], webrtc=WEBRTC)
    url = f"http://127.0.0.1:{gw.http_port}/api/whep/busy"
    stalled = [subprocess.Popen([sys.executable, "-m", "gateway.egress.webrtc.client", url, TOKEN],
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        lines = await asyncio.gather(*(asyncio.to_thread(proc.stdout.readline) for proc in stalled))
        assert all(line.startswith("first frame") for line in lines), lines
        for proc in stalled:
            os.kill(proc.pid, signal.SIGSTOP)  # stops reading its socket: packets pile up and drop
        await open_wall(page, gw, f"?token={TOKEN}")
        await page.evaluate("window.vsgwWall.setLayout(1)")
        await until(page, lambda ts: ts[0]["frames"] >= 5)
        start = (await page.evaluate("window.vsgwWall.tiles()"))[0]["frames"]
        await asyncio.sleep(3.0)  # a measuring window, not synchronisation
        end = (await page.evaluate("window.vsgwWall.tiles()"))[0]["frames"]
        assert (end - start) / 3.0 >= 22, (start, end)  # the camera makes 25 fps
    finally:
        for proc in stalled:
            proc.kill()
            proc.wait()


async def test_r2_wall_without_token_shows_login_and_denied_tile_shows_reason(make_gateway, page: Page) -> None:  # noqa: ANN001
    class DenyLive:
        async def authorize(self, subject, action, resource, context=None):  # noqa: ANN001, ANN201
            if action == "view_live":
                return Decision(False, "camera level 4 above clearance")
            return Decision(True, "ok")

    gw = await make_gateway(cameras=[synthetic("secret")], webrtc=WEBRTC)
    await open_wall(page, gw)
    assert await page.locator("#login").is_visible()
    await open_wall(page, gw, "?token=wrong")
    await page.wait_for_selector("#login:not([hidden])")
    gw.policy = DenyLive()
    await open_wall(page, gw, f"?token={TOKEN}")
    tiles = await until(page, lambda ts: ts[0]["status"] == "forbidden")
    assert tiles[0]["why"] == "camera level 4 above clearance"
    assert "camera level 4 above clearance" in await page.locator(".tile .status").first.inner_text()
