"""A WHEP client on aiortc (tests, benchmarks, troubleshooting): offers recvonly H.264 video (and
H.265 with ``h265=True``, which the compatibility module teaches aiortc) and decodes what
arrives, recording when each frame came and keeping the last picture."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
from aiortc.mediastreams import MediaStreamError
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

from . import compat


@dataclass
class WhepClient:
    url: str  # http://host:port/api/whep/{camera}
    token: str | None
    h265: bool = False  # offer H.265 too (first), as Safari and Chrome with a hardware decoder do
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[])))
    location: str | None = None
    frames: list[tuple[float, int, int]] = field(default_factory=list)  # (monotonic, width, height)
    posted_at: float = 0.0
    last_frame = None  # the last decoded av.VideoFrame
    first_frame = None
    _task: asyncio.Task | None = None
    _decoded: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientResponse:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        wanted = (compat.H265_MIME, "video/H264") if self.h265 else ("video/H264",)
        codecs = RTCRtpReceiver.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for mime in wanted for c in codecs if c.mimeType == mime])
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.first_frame = asyncio.get_running_loop().create_future()

        @self.pc.on("track")
        def _track(track) -> None:  # noqa: ANN001
            self._task = asyncio.ensure_future(self._consume(track))

        headers = {"Content-Type": "application/sdp"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.posted_at = time.monotonic()
        resp = await session.post(self.url, data=self.pc.localDescription.sdp, headers=headers)
        if resp.status == 201:
            self.location = resp.headers["Location"]
            await self.pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
        return resp

    async def _consume(self, track) -> None:  # noqa: ANN001
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames.append((time.monotonic(), frame.width, frame.height))
            self.last_frame = frame
            self._decoded.set()
            if not self.first_frame.done():
                self.first_frame.set_result(time.monotonic() - self.posted_at)

    async def wait_frames(self, count: int):  # noqa: ANN201 - av.VideoFrame
        """Until ``count`` frames were decoded; the last one."""
        while len(self.frames) < count:
            self._decoded.clear()
            await self._decoded.wait()
        return self.last_frame

    async def close(self, session: aiohttp.ClientSession | None = None) -> None:
        if session is not None and self.location:
            base = self.url.split("/api/")[0]
            await session.delete(base + self.location, headers={"Authorization": f"Bearer {self.token}"})
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()


async def _main(url: str, token: str) -> None:
    client = WhepClient(url, token)
    async with aiohttp.ClientSession() as http:
        resp = await client.connect(http)
        if resp.status != 201:
            raise SystemExit(f"WHEP refused: {resp.status} {await resp.text()}")
        print(f"first frame after {await client.first_frame:.3f} s", flush=True)
        while True:
            await asyncio.sleep(1)
            print(f"{len(client.frames)} frames", flush=True)


if __name__ == "__main__":
    import sys

    asyncio.run(_main(sys.argv[1], sys.argv[2]))
