"""The wall's playback bar in real headless Chromium (R1): a GB/T 28181 camera the gateway holds no
recording of plays from the device when its timeline is clicked, and the bar's pause, speed and a
click further along the timeline reach the device as MANSRTSP through the playback's session;
the picture keeps decoding after each. The simulator obeys what it is sent."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page

from tests.conftest import TOKEN
from tests.test_gb28181_signalling import sip, start_sim
from tests.test_gb28181_signalling import until as until_gateway
from tests.test_wall_chromium import WEBRTC, open_wall, page, until  # noqa: F401 - page is a fixture

pytestmark = pytest.mark.browser


def infos(sim) -> list[str]:  # noqa: ANN001
    return [e[2] for e in sim.received if e[0] == "INFO"]


async def test_r1_wall_playback_bar_pauses_speeds_and_seeks_a_device_playback(make_gateway, page: Page) -> None:  # noqa: F811
    gw = await make_gateway(sip=sip(), webrtc=WEBRTC)
    sim = await start_sim(gw, honour_mansrtsp=True)
    cid = sim.cfg.channel_ids()[0]
    try:
        await until_gateway(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
        await open_wall(page, gw, f"?token={TOKEN}")
        await page.evaluate("window.vsgwWall.setLayout(1)")
        await until(page, lambda ts: ts[0]["camera"] == cid)
        await page.locator(".tile .rec").first.click()
        await until(page, lambda ts: ts[0]["ranges"] == [])  # the gateway holds nothing: the device will play
        track = page.locator(".tile .timeline .track").first
        box = await track.bounding_box()
        await track.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
        tiles = await until(page, lambda ts: ts[0]["status"] == "playback" and ts[0]["decoded"] >= 10, timeout=20)
        assert (await sim.wait_for(lambda e: e[0] == "INVITE" and e[2].session == "Playback"))

        await page.locator(".tile .pp").first.click()
        await sim.wait_for(lambda e: e[0] == "INFO" and e[1].startswith("PAUSE"))
        tiles = await until(page, lambda ts: ts[0]["playback"]["paused"])
        session = tiles[0]["playback"]["session"]
        assert session in gw.sessions.open

        await page.locator(".tile .speed").first.select_option("4")
        await sim.wait_for(lambda e: e[0] == "INFO" and "Scale: 4.00" in e[2])
        tiles = await until(page, lambda ts: ts[0]["playback"]["speed"] == 4 and not ts[0]["playback"]["paused"])
        decoded = tiles[0]["decoded"]
        await until(page, lambda ts: ts[0]["decoded"] > decoded + 10, timeout=20)  # the picture runs again

        sent = len(infos(sim))
        await track.click(position={"x": box["width"] * 0.55, "y": box["height"] / 2})  # 3 min further on
        await sim.wait_for(lambda e: e[0] == "INFO" and "Range: npt=" in e[2] and len(infos(sim)) > sent)
        npt = float(re.search(r"Range: npt=([\d.]+)-", infos(sim)[-1]).group(1))
        assert 120 < npt < 240
        tiles = await until(page, lambda ts: ts[0]["playback"]["session"] == session)  # the same playback, steered
        decoded = tiles[0]["decoded"]
        await until(page, lambda ts: ts[0]["decoded"] > decoded + 10, timeout=20)
        assert len([e for e in sim.received if e[0] == "INVITE" and e[2].session == "Playback"]) == 1
    finally:
        await sim.stop()
