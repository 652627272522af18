"""What the superior asks of us, each through the gate and into the audit trail (R1, R2, R18).

Only the superior may ask (its address and server ID; :mod:`.link`). Catalog, DeviceInfo and
DeviceStatus are LIST on the platform itself (``Resource("system", local_id)``), one audited decision
per query; the Catalog's cameras are then each a quiet LIST decision for the superior's subject.
RecordInfo is VIEW_PLAYBACK on the channel for the window asked for. A refusal is answered 403 with
no body; an allowed query is answered 200 and its Response MESSAGE(s) follow. A DeviceControl PTZCmd
is PTZ on the channel: allowed and shared, it is answered 200 and relayed to the channel's source
(the relay's outcome audited). INVITE for live video, its ACK and BYE belong to :mod:`.dialogs`.
What the superior may not do over the cascade yet (other DeviceControl commands, SUBSCRIBE, INVITE
Playback/Download) is answered 501 and audited as refused.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.base import NotSupported, PtzCommand
from gateway.policy import AccessRequestError, Action, Resource, TimeWindow, subject_access
from gateway.registry import UnknownChannel

from .. import manscdp, ptz
from ..manscdp import Manscdp, XmlError
from ..sip import SipMessage, response, uri_user
from ..transport import Peer
from . import answers, catalog

if TYPE_CHECKING:
    from .link import Link

log = logging.getLogger(__name__)


class Requests:
    def __init__(self, link: Link) -> None:
        self.link = link

    async def handle(self, req: SipMessage, peer: Peer) -> None:
        if not self._from_superior(req, peer):
            if req.method != "ACK":
                self._reply(req, peer, 403, "Not From The Superior")
            self._count("rejected", "foreign_source")
            return
        if req.method == "ACK":
            self.link.dialogs.ack(req)
        elif req.method == "MESSAGE":
            await self._message(req, peer)
        elif req.method == "INVITE":
            self._count("request", "invite")
            await self.link.dialogs.invite(req, peer)
        elif req.method == "OPTIONS":
            self._reply(req, peer, 200)
        elif req.method == "BYE":
            self.link.dialogs.bye(req, peer)
        else:
            await self.unsupported(req, peer, req.method or "", self.link.sup.local_id)

    def _from_superior(self, req: SipMessage, peer: Peer) -> bool:
        own = self.link.peer
        if own is None or peer.transport != own.transport:
            return False
        same = peer == own if peer.transport == "tcp" else peer.addr == own.addr
        return same and uri_user(req.get("from") or "") == self.link.sup.server_id

    def _reply(self, req: SipMessage, peer: Peer, status: int, reason: str | None = None) -> None:
        self.link.endpoint.reply(req, response(req, status, reason, to_tag=self.link.tag, source=peer.addr), peer)

    def _count(self, what: str, label: str) -> None:
        name = "vsgw_cascade_rejected_total" if what == "rejected" else "vsgw_cascade_requests_total"
        key = "reason" if what == "rejected" else "cmd"
        self.link.metrics.inc(name, superior=self.link.sup.server_id, **{key: label})

    async def _message(self, req: SipMessage, peer: Peer) -> None:
        try:
            msg = manscdp.parse(req.body)
        except XmlError as exc:
            self._count("rejected", f"xml_{exc.reason}")
            self._reply(req, peer, 400)
            return
        cmd = msg.cmd.lower()
        handler = {"catalog": self._catalog, "deviceinfo": self._platform, "devicestatus": self._platform,
                   "recordinfo": self._record_info}.get(cmd) if msg.kind == "query" else None
        if msg.kind == "control" and cmd == "devicecontrol" and msg.root.get("ptzcmd"):
            handler = self._ptz
        if handler is None:
            await self.unsupported(req, peer, f"{msg.kind} {msg.cmd}", msg.device_id)
            return
        self._count("request", cmd)
        await handler(req, peer, msg)

    async def unsupported(self, req: SipMessage, peer: Peer, what: str, target: str) -> None:
        self._count("rejected", "unsupported")
        self._reply(req, peer, 501)
        await self.link.gw.audit.record(
            actor=self.link.subject.id, action="cascade.request", resource=f"device:{target}", decision="deny",
            reason=f"{what[:40]} is not served over the cascade", address=self.link.subject.address,
            request_id=req.call_id[:64] or None)

    async def _gate(self, req: SipMessage, action: Action, resource: Resource, msg: Manscdp,
                    window: tuple[datetime, datetime] | None = None) -> bool:
        decision = await self.link.gw.policy.authorize(subject_access(
            self.link.subject, action, resource, "sip", window=window, request_id=req.call_id[:64] or None,
            detail={"cmd": msg.cmd, "sn": msg.sn}))
        return decision.allowed

    async def _platform(self, req: SipMessage, peer: Peer, msg: Manscdp) -> None:
        """DeviceInfo / DeviceStatus of the platform itself."""
        link = self.link
        if not await self._gate(req, Action.LIST, Resource("system", link.sup.local_id), msg):
            self._reply(req, peer, 403)
            return
        self._reply(req, peer, 200)
        link.spawn(self._answer_platform(msg))

    async def _answer_platform(self, msg: Manscdp) -> None:
        link = self.link
        if msg.cmd.lower() == "deviceinfo":
            shared = await catalog.shared(link.gw, link.sup, link.subject)
            fields = answers.device_info(link.cfg.name, link.gw.version, len(shared.cameras))
        else:
            fields = answers.device_status(link.sup.zone)
        body = manscdp.build("Response", msg.cmd, msg.sn, link.sup.local_id, fields, encoding=link.sup.charset)
        await link.send_bodies(msg.cmd, [body])

    async def _catalog(self, req: SipMessage, peer: Peer, msg: Manscdp) -> None:
        link = self.link
        if not await self._gate(req, Action.LIST, Resource("system", link.sup.local_id), msg):
            self._reply(req, peer, 403)
            return
        self._reply(req, peer, 200)
        link.spawn(self._answer_catalog(req, msg))

    async def _answer_catalog(self, req: SipMessage, msg: Manscdp) -> None:
        link, sup = self.link, self.link.sup
        shared = await catalog.shared(link.gw, sup, link.subject)
        items = catalog.items(sup, shared.cameras, catalog.Org.of(link.gw))
        bodies = catalog.packets(sup, "Catalog", msg.sn, sup.local_id, items, "DeviceList")
        delivered = await link.send_bodies("Catalog", bodies)
        log.info("GB cascade %s: Catalog SN %d answered with %d cameras and %d organisation nodes in %d packets%s",
                 sup.label, msg.sn, len(shared.cameras), len(items) - len(shared.cameras), len(bodies),
                 "" if delivered else " (not all taken)")
        await link.gw.audit.record(
            actor=link.subject.id, action="cascade.catalog", resource=f"system:{sup.local_id}", decision="done",
            reason=f"{len(shared.cameras)} cameras shared", address=link.subject.address,
            request_id=req.call_id[:64] or None,
            extra={"sn": msg.sn, "cameras": len(shared.cameras), "nodes": len(items) - len(shared.cameras),
                   "packets": len(bodies), "delivered": delivered, "withheld_by_gate": shared.refused,
                   "withheld_by_share_list": shared.unshared, "unaddressable": shared.unaddressable})

    async def _record_info(self, req: SipMessage, peer: Peer, msg: Manscdp) -> None:
        link, sup = self.link, self.link.sup
        try:
            window = TimeWindow(answers.local_time(msg.root.get("starttime"), sup.zone),
                                answers.local_time(msg.root.get("endtime"), sup.zone))
        except (ValueError, AccessRequestError):
            self._count("rejected", "bad_time_range")
            self._reply(req, peer, 400, "Bad Request (StartTime/EndTime)")
            return
        cid = msg.device_id
        span = (window.start, window.end)
        if not await self._gate(req, Action.VIEW_PLAYBACK, link.gw.camera_resource(cid), msg, span):
            self._reply(req, peer, 403)
            return
        if not sup.shares(cid) or cid not in link.gw.registry.channels:
            await link.gw.audit.record(
                actor=link.subject.id, action="cascade.recordinfo", resource=f"camera:{cid}", decision="deny",
                reason="not shared with this superior", address=link.subject.address,
                request_id=req.call_id[:64] or None)
            self._reply(req, peer, 404)
            return
        self._reply(req, peer, 200)
        link.spawn(self._answer_records(msg, cid, span))

    async def _answer_records(self, msg: Manscdp, cid: str, span: tuple[datetime, datetime]) -> None:
        link, sup = self.link, self.link.sup
        recordings: Any = link.gw.recordings
        ranges = await recordings.ranges(cid, *span) if recordings is not None else []
        name = link.gw.registry.channels[cid].name if cid in link.gw.registry.channels else cid
        items = answers.record_items(cid, name, ranges, sup.zone)
        bodies = catalog.packets(sup, "RecordInfo", msg.sn, cid, items, "RecordList", [("Name", name)])
        await link.send_bodies("RecordInfo", bodies)

    async def _ptz(self, req: SipMessage, peer: Peer, msg: Manscdp) -> None:
        link, gw, cid = self.link, self.link.gw, msg.device_id
        try:
            command = ptz.decode(msg.root.get("ptzcmd") or "")
        except ValueError:
            self._count("rejected", "bad_ptzcmd")
            self._reply(req, peer, 400, "Bad Request (PTZCmd)")
            return
        if not await self._gate(req, Action.PTZ, gw.camera_resource(cid), msg):
            self._reply(req, peer, 403)
            return
        if not link.sup.shares(cid) or cid not in gw.registry.channels:
            await gw.audit.record(
                actor=link.subject.id, action="cascade.ptz", resource=f"camera:{cid}", decision="deny",
                reason="not shared with this superior", address=link.subject.address,
                request_id=req.call_id[:64] or None)
            self._reply(req, peer, 404)
            return
        self._reply(req, peer, 200)
        link.spawn(self._relay_ptz(req, cid, command))

    async def _relay_ptz(self, req: SipMessage, cid: str, command: PtzCommand) -> None:
        link, gw = self.link, self.link.gw
        try:
            await gw.registry.adapter_for(cid).ptz(cid, command)
            outcome, reason = "done", "relayed to the source"
        except (NotSupported, UnknownChannel, TimeoutError, ConnectionError, OSError) as exc:
            outcome, reason = "failed", f"{type(exc).__name__}: {exc}"[:120]
        link.metrics.inc("vsgw_cascade_ptz_total", superior=link.sup.server_id, result=outcome)
        await gw.audit.record(actor=link.subject.id, action="cascade.ptz", resource=f"camera:{cid}", decision=outcome,
                              reason=reason, address=link.subject.address, request_id=req.call_id[:64] or None)
