"""The simulator's side of one INVITE: PS/RTP of the synthetic pattern via :class:`MediaSender`,
with a G.711 tone interleaved when ``SimConfig.audio`` names a law; a playback or download ends
after ``playback_seconds`` with MediaStatus 121 (R1)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .media import MediaSender
from .simaudio import with_tone
from .sdp import Sdp
from .simplayhead import Playhead

if TYPE_CHECKING:
    from .simulator import SimConfig, Simulator

log = logging.getLogger(__name__)
ROLE = {"tcp-active": "tcp-passive", "tcp-passive": "tcp-active", "udp": "udp"}


class Session:
    def __init__(self, cfg: SimConfig, offer: Sdp, ssrc: int, channel_id: str) -> None:
        from .simulator import units_forever

        self.cfg, self.offer, self.channel_id = cfg, offer, channel_id
        self.finite = offer.session in ("Playback", "Download")
        honoured = self.finite and cfg.honour_mansrtsp
        self.playhead = Playhead(offer, cfg.fps, cfg.playback_seconds) if honoured else None
        units: AsyncIterator = units_forever(cfg, channel_id, paced=self.playhead is None)
        if self.playhead is not None:
            units = self.playhead.units(units)
        elif self.finite:
            units = _limited(units, cfg.playback_seconds * cfg.fps)
        if cfg.audio:
            units = with_tone(units, cfg.audio, cfg.fps)
        self.sender = MediaSender(ROLE[offer.transport], offer.host, offer.port, ssrc, units, cfg.local_host)
        if self.playhead is not None:
            self.playhead.attach(self.sender)
        self.dialog: Any = None
        self.task: asyncio.Task | None = None

    async def open(self) -> int:
        return await self.sender.open() or 15060

    def mansrtsp(self, text: str) -> None:
        """A MANSRTSP INFO in this dialog: honoured only with ``honour_mansrtsp``."""
        if self.playhead is not None:
            self.playhead.apply(text)

    def start(self, sim: Simulator) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(sim))

    async def _run(self, sim: Simulator) -> None:
        try:
            await self.sender.run()
        except (OSError, ConnectionError) as exc:
            log.info("simulator media for %s ended: %s", self.channel_id, exc)
            return
        if self.finite:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await sim.send_manscdp("Notify", "MediaStatus", [("NotifyType", 121)], device_id=self.channel_id)

    async def stop(self) -> None:
        await self.sender.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _limited(units: AsyncIterator, count: float) -> AsyncIterator:
    n = 0
    async for unit in units:
        yield unit
        n += 1
        if n >= count:
            return
