"""The wall's words and clock (R12) in real headless Chromium: the emergency banner names the
kind in the reader's language (社会治安事件 / public order, never ``public_order``) and says until
when in [node] time_zone, not in the browser's own zone."""

from __future__ import annotations

from datetime import datetime
import time
from zoneinfo import ZoneInfo

from playwright.async_api import async_playwright
import pytest

from gateway.policy.workflows import EmergencyDeclared
from tests.conftest import TOKEN, synthetic

from .test_wall_chromium import ARGS, WEBRTC, open_wall

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
ZONE = "Asia/Shanghai"


async def test_r12_banner_names_the_emergency_kind_and_its_end_in_the_node_zone(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("street")], webrtc=WEBRTC, node={"time_zone": ZONE})
    expires = time.time() + 3600
    until = datetime.fromtimestamp(expires, ZoneInfo(ZONE)).strftime("%H:%M:%S")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            page = await (await browser.new_context(timezone_id="America/Los_Angeles")).new_page()
            await open_wall(page, gw, f"?token={TOKEN}")
            # the event stream is open (selectors, not a string predicate: the wall's CSP forbids eval)
            await page.wait_for_selector("html[lang=zh-CN] #sse-state:not(:empty):not(.down)")
            gw.bus.publish(EmergencyDeclared(emergency_id="em-1", kind="public_order", scope_cameras=["street"],
                                             expires_at=expires, justification="车站人群聚集"))
            banner = page.locator("#emergency")
            await page.wait_for_selector("#emergency:has-text('社会治安事件')")
            text = await banner.inner_text()
            assert "public_order" not in text and "车站人群聚集" in text and until in text
            await page.click("#lang")
            await page.wait_for_selector("#emergency:has-text('public order')")
            assert until in await banner.inner_text()
        finally:
            await browser.close()
