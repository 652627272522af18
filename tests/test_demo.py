"""The README's demo: ``vsgw demo`` starts on the embedded defaults and prints working URLs; a new
user opens the printed wall URL in Chromium, logs in with the printed operator login, and the 2×2
layout plays live cameras (issue 4's "done when")."""

from __future__ import annotations

import asyncio
import re
import sys

import aiohttp
from playwright.async_api import async_playwright

from tests.test_wall_chromium import ARGS, until


async def test_demo_prints_urls_and_its_wall_plays_four_live_cameras_after_login(tmp_path) -> None:  # noqa: ANN001
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--port", "0", "--sip-port", "0", "--grpc-port", "0",
        "--data-dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        lines: list[str] = []
        while not any("Ctrl+C" in line for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, f"demo exited early: {lines}"
            lines.append(line.decode())
        text = "".join(lines)
        cameras_url = re.search(r"(http://\S+/api/cameras\?access_token=\S+)", text).group(1)
        assert "sqlite" in text
        async with aiohttp.ClientSession() as http:
            async with http.get(cameras_url) as r:
                cams = (await r.json())["cameras"]
        synthetic = [c for c in cams if c["adapter"] == "synthetic"]
        assert len(synthetic) >= 4 and all(c["online"] for c in synthetic)
        wall = re.search(r"Video wall\s+(http://\S+/wall/)", text).group(1)
        user, password = re.search(r"Wall login\s+(\S+) / (\S+)", text).groups()
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            try:
                page = await browser.new_page()
                await page.goto(wall)  # without the token: the login form
                await page.fill("#login-form [name=username]", user)
                await page.fill("#login-form [name=password]", password)
                await page.click("#login-form button[type=submit]")
                await until(page, lambda ts: len(ts) == 4 and all(t["status"] == "live" and t["decoded"] >= 1
                                                                  for t in ts), timeout=30)
            finally:
                await browser.close()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
