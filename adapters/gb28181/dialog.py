"""INVITE dialogs: live Play, Playback and Download, their media sessions, BYE and MANSRTSP (R1).

One receive port per stream (a shared port crosses streams: WVP/ZLM "ssrc mismatch"), the
device's own ``y=`` SSRC — or none — is accepted, and a stream that goes silent is BYE'd and
re-INVITEd up to ``reinvites`` times before the hub is told it failed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.media import AccessUnit

from .sdp import Sdp, SdpError, ssrc_for
from .sdp import parse as parse_sdp
from .server import DeviceRefused
from .sip import SipMessage, param, uri_hostport

if TYPE_CHECKING:
    from .config import SipConfig
    from .devices import Device
    from .server import GbServer

log = logging.getLogger(__name__)
MANSRTSP = "Application/MANSRTSP"


class Silent(Exception):
    """No media for ``silence_timeout`` seconds."""


class Invite:
    """An established dialog with its media session."""

    def __init__(self, server: GbServer, dev: Device, channel_id: str, media: Any, invite: SipMessage,
                 ok: SipMessage, answer: Sdp, session: str) -> None:
        self.server, self.dev, self.channel_id, self.media = server, dev, channel_id, media
        self.call_id = invite.call_id
        self.cseq = invite.cseq[0]
        self.to_tag = param(ok.get("to") or "", "tag")
        self.answer, self.session = answer, session
        self.ended = asyncio.Event()
        self._rtsp_cseq = itertools.count(1)
        self._closed = False

    def _in_dialog(self, method: str, body: bytes = b"", content_type: str | None = None) -> SipMessage:
        self.cseq += 1
        return self.server.new_request(method, self.dev, self.channel_id, body, content_type,
                                       call_id=self.call_id, to_tag=self.to_tag, cseq=self.cseq)

    async def info(self, text: str) -> int:
        body = f"{text}\r\nCSeq: {next(self._rtsp_cseq)}\r\n".replace("\n", "\r\n").replace("\r\r", "\r")
        req = self._in_dialog("INFO", body.encode() + b"\r\n", MANSRTSP)
        resp = await self.server.endpoint.request(req, self.dev.peer)
        return resp.status or 0

    async def close(self, send_bye: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self.ended.set()
        try:
            if send_bye and self.dev.online:
                await self.server.endpoint.request(self._in_dialog("BYE"), self.dev.peer, timeout=2.0)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            await self.media.close()


class Player:
    def __init__(self, server: GbServer, cfg: SipConfig, metrics: Any) -> None:
        from .media import PortPool

        self.server, self.cfg, self.metrics = server, cfg, metrics
        self.pool = PortPool(cfg.rtp_low, cfg.rtp_high)
        self.dialogs: dict[str, Invite] = {}
        self.playbacks: dict[str, Invite] = {}
        self._stream_no = itertools.count(1)

    async def close(self) -> None:
        for inv in list(self.dialogs.values()):
            await inv.close()

    async def invite(self, dev: Device, channel_id: str, session: str = "Play", start: int = 0, end: int = 0,
                     speed: int | None = None, substream: int = 0) -> Invite:
        from .media import MediaSession

        cfg = self.cfg
        host = cfg.media_host or cfg.host
        ssrc = ssrc_for(cfg.realm, next(self._stream_no), history=session != "Play")
        media = MediaSession(self.pool, host, cfg.media_transport, int(ssrc))
        try:
            port = await media.open()
            offer = Sdp(session=session, origin_id=cfg.server_id, host=host, port=port,
                        transport=cfg.media_transport, ssrc=ssrc, start=start, end=end, speed=speed,
                        uri=f"{channel_id}:0" if session != "Play" else None, substream=substream)
            req = self.server.new_request("INVITE", dev, channel_id, offer.encode(), "APPLICATION/SDP")
            req.add("Subject", f"{channel_id}:{ssrc},{cfg.server_id}:0")
            req.add("Contact", f"<sip:{cfg.server_id}@{self.server.endpoint.host}:{self.server.port}>")
            ok = await self.server.endpoint.request(req, dev.peer, timeout=cfg.invite_timeout)
            if ok.status != 200:
                raise DeviceRefused(ok.status or 0, ok.reason)
            self._ack(dev, req, ok)
            answer = parse_sdp(ok.body)
            if answer.ssrc != ssrc:  # the device's own y= (or none): follow it, count it
                self.metrics.inc("vsgw_gb28181_ssrc_rebound_total")
                media.expected_ssrc = int(answer.ssrc) if answer.ssrc and answer.ssrc.isdigit() else None
            if cfg.media_transport == "tcp-active":
                await media.connect(answer.host, answer.port)
        except (SdpError, DeviceRefused, TimeoutError, ConnectionError, OSError):
            self.metrics.inc("vsgw_gb28181_invite_total", result="failed", session=session)
            await media.close()
            raise
        self.metrics.inc("vsgw_gb28181_invite_total", result="ok", session=session)
        inv = Invite(self.server, dev, channel_id, media, req, ok, answer, session)
        self.dialogs[inv.call_id] = inv
        return inv

    def _ack(self, dev: Device, req: SipMessage, ok: SipMessage) -> None:
        to_tag = param(ok.get("to") or "", "tag")
        ack = self.server.new_request("ACK", dev, (req.uri or "").split(":", 1)[1].split("@")[0],
                                      call_id=req.call_id, to_tag=to_tag, cseq=req.cseq[0])
        target = uri_hostport(ok.get("contact") or "")
        if target is not None and dev.peer.transport == "udp":
            ack.uri = f"sip:{(req.uri or '').split(':', 1)[1].split('@')[0]}@{target[0]}:{target[1]}"
        self.server.endpoint.send(ack, dev.peer)

    async def _units(self, inv: Invite) -> AsyncIterator[AccessUnit]:
        """The session's units, raising :class:`Silent` when none comes for ``silence_timeout``."""
        try:
            async for unit in inv.media.units(self.cfg.silence_timeout):
                yield unit
        except TimeoutError:
            if not inv.ended.is_set():
                raise Silent(inv.channel_id) from None

    async def live(self, dev: Device, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        failures = 0
        while True:
            inv = await self.invite(dev, channel_id, "Play", substream=substream)
            try:
                async for unit in self._units(inv):
                    failures = 0
                    yield unit
                return  # the device hung up
            except Silent:
                failures += 1
                self.metrics.inc("vsgw_gb28181_silent_streams_total")
                if failures > self.cfg.reinvites:
                    raise ConnectionError(f"{channel_id}: no media after {failures} INVITEs") from None
                log.info("%s silent; re-INVITE (%d)", channel_id, failures)
            finally:
                self.dialogs.pop(inv.call_id, None)
                await inv.close()

    async def playback(self, dev: Device, channel_id: str, start: datetime, end: datetime,
                       speed: float = 1.0) -> AsyncIterator[AccessUnit]:
        inv = await self.invite(dev, channel_id, "Playback", int(start.timestamp()), int(end.timestamp()))
        self.playbacks[channel_id] = inv
        try:
            if speed != 1.0:
                await inv.info(f"PLAY MANSRTSP/1.0\nScale: {speed:.2f}")
            async for unit in self._units(inv):
                yield unit
        except Silent:
            raise ConnectionError(f"{channel_id}: playback stalled") from None
        finally:
            self.playbacks.pop(channel_id, None)
            self.dialogs.pop(inv.call_id, None)
            await inv.close()

    async def download(self, dev: Device, channel_id: str, start: datetime, end: datetime,
                       speed: int = 4) -> AsyncIterator[AccessUnit]:
        inv = await self.invite(dev, channel_id, "Download", int(start.timestamp()), int(end.timestamp()), speed=speed)
        self.playbacks[channel_id] = inv
        try:
            async for unit in self._units(inv):
                yield unit
        finally:
            self.playbacks.pop(channel_id, None)
            self.dialogs.pop(inv.call_id, None)
            await inv.close()

    async def control(self, channel_id: str, *, scale: float | None = None, seek: float | None = None,
                      pause: bool = False) -> None:
        inv = self.playbacks.get(channel_id)
        if inv is None:
            raise LookupError(f"no playback running on {channel_id}")
        if pause:
            text = "PAUSE MANSRTSP/1.0\nPauseTime: now"
        else:
            text = "PLAY MANSRTSP/1.0"
            if scale is not None:
                text += f"\nScale: {scale:.2f}"
            if seek is not None:
                text += f"\nRange: npt={seek:g}-"
        status = await inv.info(text)
        if status != 200:
            raise DeviceRefused(status, "INFO refused")

    def end_of_file(self, channel_id: str) -> None:
        """MediaStatus 121: the device finished sending the file."""
        inv = self.playbacks.get(channel_id)
        if inv is not None:
            inv.ended.set()
            inv.media.finish()

    def remote_bye(self, call_id: str) -> bool:
        inv = self.dialogs.get(call_id)
        if inv is None:
            return False
        inv.ended.set()
        inv._closed = True  # the device ended it: no BYE back
        asyncio.get_running_loop().create_task(inv.media.close())
        return True
