"""The README's demo: ``vsgw demo`` starts on the embedded defaults and prints working URLs."""

from __future__ import annotations

import asyncio
import re
import sys

import aiohttp


async def test_demo_prints_urls_and_serves_four_live_synthetic_cameras(tmp_path) -> None:  # noqa: ANN001
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
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
