"""The wall page's player: Chromium's own <video> element plays ``/api/recordings/{cid}/play``
(fragmented MP4 streamed while it is muxed), at the recorded size."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import async_playwright

from gateway.recording.web import PART
from tests.conftest import TOKEN, synthetic

QUALITY = "(() => { const v = document.getElementById('v'); return {w: v.videoWidth, h: v.videoHeight, " \
          "frames: v.getVideoPlaybackQuality().totalVideoFrames, error: v.error && v.error.message}; })()"


@pytest.mark.browser
async def test_chromium_plays_a_recorded_range_from_the_play_url(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("wall-1")],
                            recording={"cameras": ["wall-1"], "segment_seconds": 1.0, "fsync": False})
    part = gw.app[PART]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while part.recorder.counters["segments"] < 2:
        assert loop.time() < deadline, "nothing recorded"
        await asyncio.sleep(0.1)
    (start, end), = await gw.recordings.ranges("wall-1", datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC))
    url = (f"http://127.0.0.1:{gw.http_port}/api/recordings/wall-1/play?start={start.timestamp()}"
           f"&end={end.timestamp()}&speed=16&access_token={TOKEN}")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = await browser.new_page()
            await page.set_content(f'<video id="v" muted autoplay src="{url}"></video>')
            deadline = loop.time() + 20
            while (state := await page.evaluate(QUALITY))["frames"] < 25 and not state["error"]:
                assert loop.time() < deadline, state
                await asyncio.sleep(0.1)
        finally:
            await browser.close()
    assert state["error"] is None and (state["w"], state["h"]) == (320, 240)
