"""One device Playback or Download dialog as the egress that serves it holds it (R1).

A :class:`DevicePlayback` is the async iterator of the dialog's access units, with MANSRTSP control
(``PAUSE``, ``PLAY`` with ``Scale`` / ``Range: npt=``) and the media position it has reached,
counted on the stream's own timestamps from the INVITE's start (re-anchored after a seek). A
paused device sends nothing, so silence does not end a paused playback before
``playback_pause_limit``; otherwise a device that sends nothing for ``silence_timeout`` ends it
with :class:`Stalled`. MediaStatus 121 ends it as complete. Every failure is a ConnectionError (or TimeoutError) naming
the reason, so an egress needs no GB/T 28181 types to report it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.media import CLOCK_RATE, AccessUnit

from .sdp import SdpError
from .server import DeviceRefused

if TYPE_CHECKING:
    from .devices import Device
    from .dialog import Invite, Player

KINDS = ("Playback", "Download")


class Stalled(ConnectionError):
    """The device stopped sending media in the middle of a playback or download."""


class DeviceFailed(ConnectionError):
    """The device refused the INVITE, or answered it with an SDP we cannot use."""


class ControlRefused(ConnectionError):
    """The device answered a MANSRTSP request with other than 200."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the device answered the MANSRTSP request with {status}")
        self.status = status


class DevicePlayback:
    def __init__(self, player: Player, dev: Device, channel_id: str, start: datetime, end: datetime,
                 kind: str = "Playback", speed: float = 1.0, download_speed: int | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}")
        self.player, self.dev, self.channel_id = player, dev, channel_id
        self.start, self.end, self.kind = start, end, kind
        self.speed = speed if kind == "Playback" else float(download_speed or 1)
        self.download_speed = download_speed
        self.paused = False
        self.offset = 0.0  # media seconds from ``start`` of the latest unit
        self.units = 0
        self.invite: Invite | None = None
        self.established = asyncio.Event()
        self.outcome: str | None = None  # "end of file", a stall, "device hung up", or why it was stopped
        self._anchor: tuple[int, float] | None = None  # (dts, offset it stands for)
        self._seek: float | None = None  # the next unit re-anchors here
        self._paused_at = 0.0
        self._lock = asyncio.Lock()  # one MANSRTSP request at a time: CSeq order is the device's order
        self._iter = self._run()

    @property
    def span(self) -> float:
        return max((self.end - self.start).total_seconds(), 1e-3)

    def __aiter__(self) -> DevicePlayback:
        return self

    async def __anext__(self) -> AccessUnit:
        return await self._iter.__anext__()

    async def aclose(self) -> None:
        await self._iter.aclose()

    async def _run(self) -> AsyncIterator[AccessUnit]:
        player, loop = self.player, asyncio.get_running_loop()
        try:
            inv = await player.invite(self.dev, self.channel_id, self.kind, int(self.start.timestamp()),
                                      int(self.end.timestamp()), speed=self.download_speed)
        except (DeviceRefused, SdpError) as exc:
            self.outcome = f"the device refused the {self.kind.lower()}: {exc}"
            raise DeviceFailed(f"{self.channel_id}: {self.outcome}") from None
        self.invite = inv
        player.playbacks[inv.call_id] = self
        reason = "stopped"
        try:
            if self.kind == "Playback" and self.speed != 1.0:
                await self._send(f"PLAY MANSRTSP/1.0\nScale: {self.speed:.2f}")
            self.established.set()
            silence = player.cfg.silence_timeout
            while True:
                try:
                    async for unit in inv.media.units(silence):
                        self._advance(unit)
                        yield unit
                    reason = self.outcome or ("device hung up" if inv.ended.is_set() else "stopped")
                    return
                except TimeoutError:
                    if inv.ended.is_set():
                        continue  # ended meanwhile: the next pass drains and returns
                    paused_for = loop.time() - self._paused_at
                    if self.paused and paused_for < player.cfg.playback_pause_limit:
                        continue
                    why = (f"paused for more than {player.cfg.playback_pause_limit:g} s" if self.paused
                           else f"the device sent no media for {silence:g} s")
                    reason = self.outcome = f"{self.kind.lower()} stalled: {why}"
                    player.metrics.inc("vsgw_gb28181_playback_stalled_total", session=self.kind)
                    raise Stalled(f"{self.channel_id}: {reason}") from None
        finally:
            player.playbacks.pop(inv.call_id, None)
            player.dialogs.pop(inv.call_id, None)
            self.established.set()
            await inv.close(reason)

    def _advance(self, unit: AccessUnit) -> None:
        self.units += 1
        if self._seek is not None or self._anchor is None or unit.dts < self._anchor[0]:
            base = self._seek if self._seek is not None else self.offset
            self._anchor, self._seek = (unit.dts, base), None
        self.offset = self._anchor[1] + (unit.dts - self._anchor[0]) / CLOCK_RATE

    def end_of_file(self) -> None:
        """MediaStatus 121: the device sent everything; the units end once drained."""
        self.outcome = self.outcome or "end of file"
        if self.invite is not None:
            self.invite.ended.set()
            self.invite.media.finish()

    def stop(self, reason: str) -> None:
        """End it from outside (the session's grant ended): the units end, the dialog is BYE'd."""
        self.outcome = self.outcome or reason
        if self.invite is not None:
            self.invite.media.finish()

    async def control(self, *, pause: bool = False, resume: bool = False, seek: float | None = None,
                      speed: float | None = None) -> None:
        """MANSRTSP in INFO: ``PAUSE``, or ``PLAY`` with ``Range: npt=<seek>-`` (``npt=now-`` to
        resume) and ``Scale``. Raises LookupError before the dialog stands or after it ended,
        ValueError for a download, :class:`ControlRefused` when the device answers otherwise than 200."""
        if self.kind != "Playback":
            raise ValueError("a download runs at its downloadspeed and is not controlled")
        if pause:
            text = "PAUSE MANSRTSP/1.0\nPauseTime: now"
        else:
            text = "PLAY MANSRTSP/1.0"
            if seek is not None:
                text += f"\nRange: npt={seek:g}-"
            elif resume:
                text += "\nRange: npt=now-"
            if speed is not None:
                text += f"\nScale: {speed:.2f}"
        async with self._lock:
            await self._send(text)
            self.paused = pause
            if pause:
                self._paused_at = asyncio.get_running_loop().time()
            if seek is not None:
                self._seek = seek
                self.offset = seek
            if speed is not None:
                self.speed = speed

    async def _send(self, text: str) -> None:
        inv = self.invite
        if inv is None or inv.ended.is_set() or self.outcome is not None:
            raise LookupError(f"the playback of {self.channel_id} is not running")
        status = await inv.info(text)
        self.player.metrics.inc("vsgw_gb28181_mansrtsp_total", result="ok" if status == 200 else "refused")
        if status != 200:
            raise ControlRefused(status)
