"""The gateway end to end on loopback: token auth, cameras with live stats, SSE, metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import av

from tests.conftest import TOKEN, auth, synthetic
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")


async def test_healthz_is_public_and_everything_else_needs_a_token(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("cam-1")])
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        for path in ("/api/cameras", "/api/cameras/cam-1", "/metrics", "/api/openapi.json", "/api/events"):
            async with http.get(base + path) as r:
                assert r.status == 401, path
                assert (await r.json())["error"] == "unauthorized"
            async with http.get(base + path, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401, path


async def test_camera_stats_show_a_live_synthetic_stream(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("cam-1", name="East Gate 东门")])
    reader = gw.hub.subscribe(TEST_READER, "cam-1")
    units = [await asyncio.wait_for(reader.get(), 10) for _ in range(30)]
    assert units[0].keyframe
    codec = av.CodecContext.create("h264", "r")
    frames = [f for u in units for p in codec.parse(u.data) for f in codec.decode(p)]
    assert frames and (frames[0].width, frames[0].height) == (320, 240)
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession(headers=auth()) as http:
        async with http.get(f"{base}/api/cameras") as r:
            cams = (await r.json())["cameras"]
        assert [c["id"] for c in cams] == ["cam-1"] and cams[0]["name"] == "East Gate 东门" and cams[0]["online"]
        async with http.get(f"{base}/api/cameras/cam-1") as r:
            stats = (await r.json())["stream"]
        assert stats["running"] and stats["readers"] == 1 and stats["codec"] == "h264"
        assert stats["fps"] > 5 and stats["bitrate"] > 0
        async with http.get(f"{base}/api/cameras/nope") as r:
            assert r.status == 404 and "nope" in (await r.json())["message"]
        async with http.get(f"{base}/metrics") as r:
            text = await r.text()
        assert 'vsgw_stream_readers{stream="cam-1"} 1' in text
    reader.close()


async def test_events_follow_stream_start_over_sse(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(cameras=[synthetic("cam-1")])
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/events?topics=stream.&access_token={TOKEN}") as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            await r.content.readline()  # ": connected"
            reader = gw.hub.subscribe(TEST_READER, "cam-1")
            event = None
            async for line in r.content:
                if line.startswith(b"data: "):
                    event = json.loads(line[6:])
                    break
            reader.close()
    assert event == {**event, "topic": "stream.state", "key": "cam-1", "running": True}


async def test_openapi_documents_every_route(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway()
    async with aiohttp.ClientSession(headers=auth()) as http:
        async with http.get(f"http://127.0.0.1:{gw.http_port}/api/openapi.json") as r:
            doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    for route in gw.app.router.routes():
        if route.method != "HEAD":
            info = route.resource.get_info()
            path = info.get("path") or info.get("formatter", "").replace("{tail:.*}", "{tail}")
            assert (route.method, path) in documented
    assert doc["paths"]["/healthz"]["get"]["security"] == []
