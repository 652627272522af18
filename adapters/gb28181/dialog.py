"""INVITE dialogs: live Play, Playback and Download, their media sessions, BYE and MANSRTSP (R1).

One receive port per stream (a shared port crosses streams: WVP/ZLM "ssrc mismatch"), the
device's own ``y=`` SSRC — or none — is accepted. The INVITE runs as an RFC 3261 client
transaction (:mod:`.transaction`). A live stream that goes silent, or whose INVITE fails, is BYE'd
and re-INVITEd up to ``reinvites`` times with a doubling backoff; then :class:`NoMedia` tells the
hub to stop the stream instead of reopening it. Each dialog's outcome is one INFO log line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.media import AccessUnit
from gateway.media.stream import SourceGone

from .playback import DevicePlayback
from .sdp import Sdp, SdpError, ssrc_for
from .sdp import parse as parse_sdp
from .server import DeviceRefused
from .sip import SipMessage, param
from .transaction import InviteClient, remote_target

if TYPE_CHECKING:
    from .config import SipConfig
    from .devices import Device
    from .server import GbServer

log = logging.getLogger(__name__)
MANSRTSP = "Application/MANSRTSP"


class Silent(Exception):
    """No media for ``silence_timeout`` seconds."""


class NoMedia(SourceGone):
    """A live channel gave no media over every allowed INVITE: the stream stops with this reason."""


class Invite:
    """An established dialog with its media session."""

    def __init__(self, server: GbServer, dev: Device, channel_id: str, media: Any, invite: SipMessage,
                 ok: SipMessage, answer: Sdp, session: str) -> None:
        self.server, self.dev, self.channel_id, self.media = server, dev, channel_id, media
        self.call_id = invite.call_id
        self.cseq = invite.cseq[0]
        self.to_tag = param(ok.get("to") or "", "tag")
        self.target = remote_target(invite, ok)
        self.answer, self.session = answer, session
        self.ended = asyncio.Event()
        self._rtsp_cseq = itertools.count(1)
        self._closed = False

    def _in_dialog(self, method: str, body: bytes = b"", content_type: str | None = None) -> SipMessage:
        self.cseq += 1
        msg = self.server.new_request(method, self.dev, self.channel_id, body, content_type,
                                      call_id=self.call_id, to_tag=self.to_tag, cseq=self.cseq)
        msg.uri = self.target
        return msg

    async def info(self, text: str) -> int:
        body = f"{text}\r\nCSeq: {next(self._rtsp_cseq)}\r\n".replace("\n", "\r\n").replace("\r\r", "\r")
        req = self._in_dialog("INFO", body.encode() + b"\r\n", MANSRTSP)
        resp = await self.server.endpoint.request(req, self.dev.peer)
        return resp.status or 0

    async def close(self, reason: str = "hung up", send_bye: bool = True) -> None:
        """End the dialog (BYE unless the device ended it) and log its outcome."""
        if self._closed:
            return
        self._closed = True
        self.ended.set()
        log.info("GB dialog %s %s %s ended: %s", self.dev.id, self.channel_id, self.session, reason)
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
        self.playbacks: dict[str, DevicePlayback] = {}  # Call-ID -> playback or download
        self.transactions: set[InviteClient] = set()  # INVITEs still listening (late 2xx, CANCEL)
        self._stream_no = itertools.count(1)

    async def close(self) -> None:
        for inv in list(self.dialogs.values()):
            await inv.close("gateway stopping")
        for tx in list(self.transactions):
            tx.end()

    async def invite(self, dev: Device, channel_id: str, session: str = "Play", start: int = 0, end: int = 0,
                     speed: int | None = None, substream: int = 0) -> Invite:
        from .media import MediaSession

        cfg = self.cfg
        host = cfg.media_host or cfg.host
        ssrc = ssrc_for(cfg.realm, next(self._stream_no), history=session != "Play")
        transport = self.server.settings(dev.id).media_transport  # per device, else [sip] media_transport
        media = MediaSession(self.pool, host, transport, int(ssrc))
        inv: Invite | None = None
        try:
            port = await media.open()
            offer = Sdp(session=session, origin_id=cfg.server_id, host=host, port=port,
                        transport=transport, ssrc=ssrc, start=start, end=end, speed=speed,
                        uri=f"{channel_id}:0" if session != "Play" else None, substream=substream)
            req = self.server.new_request("INVITE", dev, channel_id, offer.encode(), "APPLICATION/SDP")
            req.add("Subject", f"{channel_id}:{ssrc},{cfg.server_id}:0")
            req.add("Contact", f"<sip:{cfg.server_id}@{self.server.endpoint.host}:{self.server.port}>")
            tx = InviteClient(self.server.endpoint, req, dev.peer, calling_timeout=cfg.invite_timeout,
                              proceeding_timeout=cfg.invite_answer_timeout, label=f"{dev.id} {channel_id}",
                              metrics=self.metrics, on_end=self.transactions.discard)
            self.transactions.add(tx)
            ok = await tx.run()
            if not 200 <= (ok.status or 0) < 300:
                raise DeviceRefused(ok.status or 0, ok.reason)
            inv = Invite(self.server, dev, channel_id, media, req, ok, Sdp(direction=""), session)
            inv.answer = answer = parse_sdp(ok.body)
            if answer.ssrc != ssrc:  # the device's own y= (or none): follow it, count it
                self.metrics.inc("vsgw_gb28181_ssrc_rebound_total")
                media.expected_ssrc = int(answer.ssrc) if answer.ssrc and answer.ssrc.isdigit() else None
            if transport == "tcp-active":
                await media.connect(answer.host, answer.port)
        except (SdpError, DeviceRefused, TimeoutError, ConnectionError, OSError) as exc:
            result, reason = _failure(exc)
            self.metrics.inc("vsgw_gb28181_invite_total", result=result, session=session)
            if inv is not None:  # the device holds a session: BYE it
                await inv.close(f"INVITE failed after 200 OK: {reason}")
            else:
                log.info("GB dialog %s %s %s not established: %s", dev.id, channel_id, session, reason)
                await media.close()
            raise
        except asyncio.CancelledError:  # the stream stopped meanwhile: the transaction CANCELs or BYEs
            await (inv.close("stream stopped") if inv is not None else media.close())
            raise
        self.metrics.inc("vsgw_gb28181_invite_total", result="ok", session=session)
        log.debug("GB dialog %s %s %s established (Call-ID %s)", dev.id, channel_id, session, inv.call_id)
        self.dialogs[inv.call_id] = inv
        return inv

    async def _units(self, inv: Invite) -> AsyncIterator[AccessUnit]:
        """The session's units, raising :class:`Silent` when none comes for ``silence_timeout``."""
        try:
            async for unit in inv.media.units(self.cfg.silence_timeout):
                yield unit
        except TimeoutError:
            if not inv.ended.is_set():
                raise Silent(inv.channel_id) from None

    async def live(self, dev: Device, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        """Live units; attempts that bring no media are retried ``reinvites`` times, backing off."""
        failures = 0
        while True:
            why = "silent"
            try:
                inv = await self.invite(dev, channel_id, "Play", substream=substream)
            except (SdpError, DeviceRefused, TimeoutError, ConnectionError, OSError) as exc:
                inv, why = None, _failure(exc)[1]
            if inv is not None:
                reason = "no media"
                try:
                    async for unit in self._units(inv):
                        failures = 0
                        yield unit
                    reason = "device hung up"
                    return
                except Silent:
                    self.metrics.inc("vsgw_gb28181_silent_streams_total")
                except BaseException:
                    reason = "stream stopped"
                    raise
                finally:
                    self.dialogs.pop(inv.call_id, None)
                    await inv.close(reason)
            failures += 1
            if failures > self.cfg.reinvites:
                self.metrics.inc("vsgw_gb28181_no_media_total")
                raise NoMedia(f"no media: {channel_id} sent none over {failures} INVITEs (last: {why})")
            delay = self.cfg.reinvite_backoff * 2 ** (failures - 1)
            log.debug("GB %s %s: %s; re-INVITE %d/%d in %.1f s", dev.id, channel_id, why, failures,
                     self.cfg.reinvites, delay)
            await asyncio.sleep(delay)

    def playback(self, dev: Device, channel_id: str, start: datetime, end: datetime,
                 speed: float = 1.0) -> DevicePlayback:
        """A Playback of the device's recording of [start, end]: iterate it for the units; it
        INVITEs on the first one and BYEs when it ends or is closed."""
        return DevicePlayback(self, dev, channel_id, start, end, "Playback", speed)

    def download(self, dev: Device, channel_id: str, start: datetime, end: datetime,
                 speed: int = 4) -> DevicePlayback:
        """A Download of [start, end] offered with ``a=downloadspeed:<speed>``."""
        return DevicePlayback(self, dev, channel_id, start, end, "Download", download_speed=speed)

    def _of_channel(self, channel_id: str) -> list[DevicePlayback]:
        """The channel's running playbacks and downloads, oldest first."""
        return [pb for pb in self.playbacks.values() if pb.channel_id == channel_id]

    async def control(self, channel_id: str, *, scale: float | None = None, seek: float | None = None,
                      pause: bool = False) -> None:
        """MANSRTSP on the channel's latest playback (see :meth:`DevicePlayback.control`)."""
        running = [pb for pb in self._of_channel(channel_id) if pb.kind == "Playback"]
        if not running:
            raise LookupError(f"no playback running on {channel_id}")
        await running[-1].control(pause=pause, seek=seek, speed=scale)

    def end_of_file(self, channel_id: str) -> None:
        """MediaStatus 121 (it names the channel, not the dialog): the channel's oldest running
        playback or download is complete."""
        running = [pb for pb in self._of_channel(channel_id) if pb.outcome is None]
        if running:
            running[0].end_of_file()

    def remote_bye(self, call_id: str) -> bool:
        inv = self.dialogs.get(call_id)
        if inv is None:
            return False
        if not inv._closed:
            log.info("GB dialog %s %s %s ended: device sent BYE", inv.dev.id, inv.channel_id, inv.session)
        inv.ended.set()
        inv._closed = True  # the device ended it: no BYE back
        asyncio.get_running_loop().create_task(inv.media.close())
        return True


def _failure(exc: BaseException) -> tuple[str, str]:
    """A failed INVITE as (metric result, log reason)."""
    if isinstance(exc, DeviceRefused):
        return "refused", str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout", str(exc) or "timeout"
    if isinstance(exc, SdpError):
        return "bad_sdp", str(exc)
    return "error", f"{type(exc).__name__}: {exc}"
