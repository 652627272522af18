"""The simulated device's recording clock for one Playback or Download (R1), used when
``SimConfig.honour_mansrtsp`` is set: the file covers the INVITE's ``t=`` range, its pictures carry
the file position as their timestamps, ``PAUSE`` halts the sending, ``PLAY`` resumes it, jumps to
``Range: npt=<s>-`` and sends at ``Scale`` (a download at its ``a=downloadspeed``), and the end of
the file ends the session (MediaStatus 121 follows)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from gateway.media import CLOCK_RATE, AccessUnit

if TYPE_CHECKING:
    from .media import MediaSender
    from .sdp import Sdp


class Playhead:
    def __init__(self, offer: Sdp, fps: int, fallback_seconds: float) -> None:
        self.length = float(offer.end - offer.start) if offer.end > offer.start else fallback_seconds
        self.fps = fps
        self.position = 0.0  # seconds into the file of the next picture
        self.speed = float(offer.speed or 1) if offer.session == "Download" else 1.0
        self.running = asyncio.Event()
        self.running.set()
        self.sender: MediaSender | None = None

    def attach(self, sender: MediaSender) -> None:
        self.sender = sender
        sender.pace(self.speed)

    async def units(self, source: AsyncIterator[AccessUnit]) -> AsyncIterator[AccessUnit]:
        """``source``'s pictures (unpaced; the sender paces them) stamped with the file position."""
        async for unit in source:
            await self.running.wait()
            if self.position >= self.length:
                return
            ts = round(self.position * CLOCK_RATE)
            yield replace(unit, pts=ts + (unit.pts - unit.dts), dts=ts)
            self.position += 1 / self.fps

    def apply(self, text: str) -> None:
        """One MANSRTSP request (``RTSP/1.0`` or ``MANSRTSP/1.0``, as WVP and devices write it)."""
        lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
        if not lines:
            return
        method = lines[0].split(" ", 1)[0].upper()
        headers = {k.strip().lower(): v.strip() for k, sep, v in (line.partition(":") for line in lines[1:]) if sep}
        if method == "PAUSE":
            self.running.clear()
            return
        if method != "PLAY":
            return
        if "scale" in headers:
            self.speed = float(headers["scale"])
        npt = headers.get("range", "").removeprefix("npt=").split("-", 1)[0]
        if npt and npt != "now":
            self.position = min(max(float(npt), 0.0), self.length)
        if self.sender is not None:
            self.sender.pace(self.speed)  # re-timed from the next picture: no burst after a pause or jump
        self.running.set()
