"""An H.265 camera on the wall in real headless Chromium (R1). Debian's Chromium has no H.265
decoder for WebRTC (no hardware), so it offers H.264 only: by default the tile shows the
camera's picture through the gateway's H.264 transcode; with ``[webrtc] h265 = "refuse"`` the
tile says why there is no picture instead of staying black."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.conftest import TOKEN
from tests.h265_camera import BLUE, RED, H265Camera
from tests.test_wall_chromium import WEBRTC, open_wall, page, until  # noqa: F401 - the page fixture

pytestmark = pytest.mark.browser

# the tile's current picture as mean colours of its top and bottom bands (a canvas read-back)
COLOURS = """() => {
  const v = document.querySelector(".tile video");
  if (!v || !v.videoWidth) return null;
  const c = document.createElement("canvas"); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d"); g.drawImage(v, 0, 0);
  const band = (y0, y1) => {
    const d = g.getImageData(c.width / 4, y0, c.width * 3 / 4, y1 - y0).data; const m = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { m[0] += d[i]; m[1] += d[i + 1]; m[2] += d[i + 2]; }
    return m.map(x => Math.round(x / (d.length / 4)));
  };
  return [band(c.height / 8, c.height * 3 / 8), band(c.height * 5 / 8, c.height * 7 / 8)];
}"""


async def wall_with_h265_camera(make_gateway, **webrtc):  # noqa: ANN001, ANN003, ANN201
    gw = await make_gateway(webrtc={**WEBRTC, **webrtc})
    camera = H265Camera()
    gw.add_adapter(camera)
    await camera.start(gw.registry.context(camera))
    return gw


async def test_r1_wall_shows_an_h265_camera_through_the_h264_transcode(make_gateway, page: Page) -> None:  # noqa: ANN001, F811
    gw = await wall_with_h265_camera(make_gateway)
    await open_wall(page, gw, f"?token={TOKEN}")
    tiles = await until(page, lambda ts: any(t["camera"] == "hevc-1" and t["decoded"] >= 10 for t in ts), 30)
    tile = next(t for t in tiles if t["camera"] == "hevc-1")
    assert (tile["width"], tile["height"]) == (320, 240) and tile["status"] == "live"
    top, bottom = await page.evaluate(COLOURS)
    assert all(abs(a - b) <= 40 for a, b in zip(top, RED)), top
    assert all(abs(a - b) <= 40 for a, b in zip(bottom, BLUE)), bottom
    assert gw.metrics.value("vsgw_webrtc_transcodes_total", camera="hevc-1") == 1
    assert gw.metrics.value("vsgw_webrtc_rejected_total", reason="codec") == 0


async def test_r1_wall_tile_of_a_refused_h265_camera_says_why(make_gateway, page: Page) -> None:  # noqa: ANN001, F811
    gw = await wall_with_h265_camera(make_gateway, h265="refuse")
    await open_wall(page, gw, f"?token={TOKEN}")
    tiles = await until(page, lambda ts: any(t["camera"] == "hevc-1" and "H.265" in (t["why"] or "") for t in ts), 30)
    tile = next(t for t in tiles if t["camera"] == "hevc-1")
    assert tile["decoded"] == 0 and "refuse" in tile["why"]
    text = await page.locator(".tile .status").first.inner_text()
    assert "H.265" in text  # shown on the tile, not only in the page's state
    assert gw.metrics.value("vsgw_webrtc_rejected_total", reason="h265_refused") >= 1
