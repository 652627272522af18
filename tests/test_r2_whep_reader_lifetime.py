"""No reader outlives its consumer (R2, R6): a WHEP viewer that leaves before the first frame takes
its camera's hub reader with it, so a source that never sends media is not kept (and re-invited)
for nobody. Real WHEP signalling over loopback with an aiortc client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiortc import RTCPeerConnection
import pytest

from adapters.base import Adapter, Channel
from gateway.media import AccessUnit, stream_key
from tests.conftest import auth

pytestmark = pytest.mark.asyncio


class Silent(Adapter):
    """A camera that is online but never sends a picture (a device answering INVITE with no RTP)."""

    kind = "silent-test"

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()

    async def start(self, ctx) -> None:  # noqa: ANN001
        await super().start(ctx)
        ctx.channel_seen(Channel("mute-1", "Mute", self.kind, online=True))

    def channels(self) -> list[Channel]:
        return [Channel("mute-1", "Mute", self.kind, online=True)]

    async def open(self, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        self.opened.set()
        try:
            await asyncio.Event().wait()
            yield  # pragma: no cover - never reached: no media
        finally:
            self.closed.set()


async def test_r2_whep_viewer_leaving_before_the_first_frame_closes_the_hub_reader(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(media={"linger": 0.05})
    adapter = Silent()
    gw.add_adapter(adapter)
    await adapter.start(gw.registry.context(adapter))
    client = RTCPeerConnection()
    client.addTransceiver("video", direction="recvonly")
    await client.setLocalDescription(await client.createOffer())
    base = f"http://127.0.0.1:{gw.http_port}/api/whep/mute-1"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(base, data=client.localDescription.sdp,
                                 headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 201
                location = r.headers["Location"]
            await asyncio.wait_for(adapter.opened.wait(), 10)
            stream = gw.hub.stream(stream_key("mute-1"))
            assert len(stream.readers) == 1
            async with http.delete(f"http://127.0.0.1:{gw.http_port}{location}") as r:
                assert r.status == 200
            assert not stream.readers  # gone at once, not at the first frame that never comes
            await asyncio.wait_for(adapter.closed.wait(), 10)  # and the source is released after the linger
        assert not gw.sessions.open
    finally:
        await client.close()


async def test_r18_whep_offer_that_is_not_utf8_is_a_counted_400(make_gateway) -> None:  # noqa: ANN001
    from tests.conftest import synthetic

    gw = await make_gateway(cameras=[synthetic("c1")])
    async with aiohttp.ClientSession(headers=auth()) as http:
        async with http.post(f"http://127.0.0.1:{gw.http_port}/api/whep/c1", data=b"v=0\r\nm=video \xff\xfe\r\n",
                             headers={"Content-Type": "application/sdp"}) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_offer"
        async with http.get(f"http://127.0.0.1:{gw.http_port}/healthz") as r:
            assert r.status == 200
    assert gw.metrics.value("vsgw_webrtc_rejected_total", reason="offer_encoding") == 1
