"""The superior's INVITE for live video of a shared channel, served from the hub (R1, R2, R11).

The gate decides PULL_STREAM on the camera for the superior's subject (audited); a camera the share
list leaves out, or that vsgw does not hold, is 404 (audited); an offline one 480. An allowed INVITE
is answered 200 with our SDP (sendonly, PS/90000, the superior's ``y=``), retransmitted over UDP
until the ACK comes (none within ``ACK_TIMEOUT``: BYE). From the ACK the dialog reads the hub with
the gate's decision — the camera is pulled once however many superiors and viewers watch — under a
video session, and sends PS over RTP (:mod:`.media`) until the superior's BYE, the gate closing the
session or the stream ending (we send BYE), or the link failing (the superior is gone: no BYE).
Every dialog leaves one INFO line naming the superior, the channel and the outcome.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.policy import Action, Decision, subject_access
from gateway.policy.sessions import VideoSession

from ..sdp import Sdp, SdpError, ssrc_for
from ..sdp import parse as parse_sdp
from ..sip import SipMessage, new_branch, new_tag, response, uri_user
from ..transport import T1, T2, Peer
from .media import HubSender

if TYPE_CHECKING:
    from .link import Link

log = logging.getLogger(__name__)
ACK_TIMEOUT = 64 * T1  # RFC 3261 Timer H
BYE_TIMEOUT = 2.0
ANSWER_ROLE = {"udp": "udp", "tcp-passive": "tcp-active"}  # the superior listens: we connect


@dataclass(eq=False, slots=True)
class LiveDialog:
    invite: SipMessage
    peer: Peer
    channel_id: str
    decision: Decision
    sender: HubSender
    tag: str = field(default_factory=new_tag)
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    reader: Any = None
    session: VideoSession | None = None
    ended_by: str | None = None  # why it was ended from outside the media loop
    hang_up: bool = True  # whether we send BYE when it ends
    started: float = field(default_factory=time.monotonic)

    def stop(self, reason: str, hang_up: bool = True) -> None:
        """End the media now; the serving task then hangs up when ``hang_up``."""
        if self.ended_by is None:
            self.ended_by, self.hang_up = reason, hang_up
        if self.reader is not None:
            self.reader.close()
        self.acked.set()  # a dialog still waiting for its ACK stops waiting


class Dialogs:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.open: dict[str, LiveDialog] = {}
        self._starting: set[str] = set()  # Call-IDs whose INVITE is still before the gate
        self._stream_no = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- requests -------------------------------------------------------------------------------
    async def invite(self, req: SipMessage, peer: Peer) -> None:
        link = self.link
        call_id = req.call_id
        if call_id in self._starting:
            return  # a retransmission while the gate deliberates: the answer will come
        if call_id in self.open:
            self._reply(req, peer, 488, "Re-INVITE Not Supported")
            return
        self.link.endpoint.reply(req, response(req, 100, source=peer.addr), peer)
        cid = uri_user(req.uri or "")
        try:
            offer = parse_sdp(req.body)
        except SdpError:
            self._refuse(req, peer, cid, 488, "bad_sdp", "the SDP offer could not be read")
            return
        if offer.session != "Play":
            await link.requests.unsupported(req, peer, f"INVITE {offer.session}", cid)
            return
        if offer.transport not in ANSWER_ROLE:
            self._refuse(req, peer, cid, 488, "transport", f"media transport {offer.transport} is not served")
            return
        self._starting.add(call_id)
        try:
            await self._admit(req, peer, cid, offer)
        finally:
            self._starting.discard(call_id)

    def ack(self, req: SipMessage) -> None:
        dialog = self.open.get(req.call_id)
        if dialog is not None:
            dialog.acked.set()

    def bye(self, req: SipMessage, peer: Peer) -> None:
        dialog = self.open.get(req.call_id)
        self._reply(req, peer, 200 if dialog is not None else 481)
        if dialog is not None:
            dialog.stop("the superior sent BYE", hang_up=False)

    def close_all(self, reason: str, hang_up: bool) -> None:
        """End every dialog: ``hang_up`` sends BYE (we are stopping), else the superior is gone."""
        for dialog in list(self.open.values()):
            dialog.stop(reason, hang_up)
            if dialog.session is not None:
                dialog.session.close(reason)  # its end in the audit trail says why

    async def stop(self) -> None:
        """End every dialog with a BYE and wait until each has hung up."""
        self.close_all("the gateway stopped", hang_up=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- admission --------------------------------------------------------------------------------
    async def _admit(self, req: SipMessage, peer: Peer, cid: str, offer: Sdp) -> None:
        link, gw, sup = self.link, self.link.gw, self.link.sup
        request_id = req.call_id[:64] or None
        decision = await gw.policy.authorize(subject_access(
            link.subject, Action.PULL_STREAM, gw.camera_resource(cid), "sip", request_id=request_id,
            detail={"cmd": "INVITE", "session": offer.session}))
        if not decision.allowed:
            self._refuse(req, peer, cid, 403, "refused", f"the gate refused: {decision.reason}")
            return
        channel = gw.registry.channels.get(cid)
        if channel is None or not sup.shares(cid):
            await gw.audit.record(actor=link.subject.id, action="cascade.invite", resource=f"camera:{cid}",
                                  decision="deny", reason="not shared with this superior",
                                  address=link.subject.address, request_id=request_id)
            self._refuse(req, peer, cid, 404, "not_shared", "not shared with this superior")
            return
        if not channel.online:
            self._refuse(req, peer, cid, 480, "offline", "the camera is offline")
            return
        ssrc = offer.ssrc if offer.ssrc and offer.ssrc.isascii() and offer.ssrc.isdigit() \
            else ssrc_for(sup.realm, next(self._stream_no))
        sender = HubSender(offer.transport, (offer.host, offer.port), int(ssrc), sup.local_host)
        try:
            port = await sender.open()
        except OSError as exc:
            self._refuse(req, peer, cid, 500, "media_error", f"cannot open media ({type(exc).__name__})")
            return
        dialog = LiveDialog(req, peer, cid, decision, sender)
        answer = Sdp(session="Play", origin_id=cid, host=sup.local_host, port=port or 9,
                     transport=ANSWER_ROLE[offer.transport], direction="sendonly", ssrc=ssrc)
        ok = response(req, 200, to_tag=dialog.tag, source=peer.addr)
        ok.add("Contact", f"<sip:{cid}@{link.endpoint.host}:{link.endpoint.port}>")
        ok.add("Content-Type", "APPLICATION/SDP")
        ok.body = answer.encode()
        self.open[req.call_id] = dialog
        link.endpoint.reply(req, ok, peer)
        task = asyncio.get_running_loop().create_task(self._serve(dialog, ok))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, req: SipMessage, peer: Peer, cid: str, status: int, result: str, why: str) -> None:
        self._reply(req, peer, status)
        self._count(result)
        log.info("GB cascade %s: live %s refused %d (%s)", self.link.sup.label, cid, status, why)

    # -- one dialog ----------------------------------------------------------------------------------
    async def _serve(self, dialog: LiveDialog, ok: SipMessage) -> None:
        link, gw = self.link, self.link.gw
        outcome = "the stream ended"
        try:
            if not await self._await_ack(dialog, ok):
                outcome = f"no ACK within {ACK_TIMEOUT:g} s"
                self._count("no_ack")
                return
            if dialog.ended_by is not None:
                return
            self._count("ok")
            with gw.hub.subscribe(dialog.decision, dialog.channel_id, name=f"superior:{link.sup.server_id}",
                                  limits=gw.reader_limits) as reader:
                dialog.reader = reader
                closed = lambda reason: dialog.stop(f"closed by the gateway: {reason}")
                async with gw.sessions.opened(dialog.decision, "live", closed) as dialog.session:
                    try:
                        await dialog.sender.run(reader)
                    except (OSError, ConnectionError) as exc:
                        outcome = f"media failed ({type(exc).__name__})"
        finally:
            self.open.pop(dialog.invite.call_id, None)
            await dialog.sender.close()
            outcome = dialog.ended_by or outcome
            if dialog.ended_by is None or dialog.hang_up:
                await self._bye(dialog)
            gw.metrics.inc("vsgw_cascade_rtp_packets_total", dialog.sender.packets_sent,
                           superior=link.sup.server_id)
            log.info("GB cascade %s: live %s ended after %.1f s, %d units sent (%s)", link.sup.label,
                     dialog.channel_id, time.monotonic() - dialog.started, dialog.sender.units_sent, outcome)

    async def _await_ack(self, dialog: LiveDialog, ok: SipMessage) -> bool:
        """Wait for the ACK, retransmitting the 200 over UDP (T1 doubling to T2)."""
        data, loop = ok.encode(), asyncio.get_running_loop()
        deadline, interval = loop.time() + ACK_TIMEOUT, T1
        while not dialog.acked.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(dialog.acked.wait(), min(interval, left))
            except TimeoutError:
                if dialog.peer.transport == "udp":
                    self.link.endpoint.send(data, dialog.peer)
                interval = min(interval * 2, T2)
        return True

    async def _bye(self, dialog: LiveDialog) -> None:
        link, inv = self.link, dialog.invite
        proto = "TCP" if dialog.peer.transport == "tcp" else "UDP"
        target = (inv.get("contact") or "").partition("<")[2].partition(">")[0] or inv.uri or ""
        msg = SipMessage(method="BYE", uri=target if target.startswith("sip") else f"sip:{link.sup.server_id}@"
                         f"{link.sup.host}:{link.sup.port}")
        msg.add("Via", f"SIP/2.0/{proto} {link.endpoint.host}:{link.endpoint.port};rport;branch={new_branch()}")
        msg.add("From", f"{inv.get('to') or ''};tag={dialog.tag}")
        msg.add("To", inv.get("from") or "")
        msg.add("Call-ID", inv.call_id)
        msg.add("CSeq", "1 BYE")
        msg.add("Max-Forwards", "70")
        try:
            await link.endpoint.request(msg, dialog.peer, timeout=BYE_TIMEOUT)
        except (TimeoutError, ConnectionError, OSError):
            self._count("bye_unanswered")

    def _reply(self, req: SipMessage, peer: Peer, status: int, reason: str | None = None) -> None:
        self.link.endpoint.reply(req, response(req, status, reason, to_tag=self.link.tag, source=peer.addr), peer)

    def _count(self, result: str) -> None:
        self.link.metrics.inc("vsgw_cascade_invites_total", superior=self.link.sup.server_id, result=result)
