"""The gateway's GB/T 28181 SIP server: registrar, keepalive, MANSCDP requests and answers (R1).

Devices REGISTER with MD5 digest (realm = domain) of a nonce issued for them (:mod:`.nonces`);
the 200 carries ``Date`` (gateway clock, devices sync from it) and ``Expires``, and binds the device
to the transport it registered over. Every other request is believed only over that binding
(:mod:`.auth`). MESSAGE bodies are MANSCDP; answers to our queries are correlated by (DeviceID,
CmdType, SN). Everything that arrives malformed is answered 400 where a transaction exists, and
counted in ``vsgw_gb28181_rejected_total``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import digest, manscdp
from .auth import Authenticator
from .catalog import Answer, Collector
from .config import SipConfig
from .devices import Device, Devices
from .manscdp import Manscdp, XmlError
from .settings import Effective
from .sip import EXPIRES_MAX, SipMessage, new_branch, new_call_id, new_tag, number, param, response, uri_user
from .transport import Endpoint, Peer

log = logging.getLogger(__name__)
USER_AGENT = "vsgw"


class GbServer:
    def __init__(self, cfg: SipConfig, metrics: Any, on_device: Callable[[Device, bool, str], None]) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.devices = Devices(cfg.keepalive_interval, cfg.keepalive_misses, on_device)
        self.endpoint = Endpoint(self._handle, self._rejected, timeout=cfg.request_timeout,
                                 on_closed=self.devices.connection_closed)
        self.collector = Collector()
        self.tag = new_tag()
        self.auth = Authenticator(cfg, metrics, self.devices, self.endpoint, self.tag)
        self._sn = itertools.count(1)
        self._cseq = itertools.count(1)
        self.on_message: list[Callable[[Device, Manscdp], None]] = []  # notifies the adapter consumes
        self.on_request: dict[str, Callable[[SipMessage, Peer], Any]] = {}  # BYE/INFO/NOTIFY handlers

    @property
    def port(self) -> int:
        return self.endpoint.port

    async def start(self) -> None:
        await self.endpoint.listen(self.cfg.host, self.cfg.port)
        self.devices.start()
        log.info("GB/T 28181 SIP on %s:%s (UDP+TCP), id %s", self.cfg.host, self.port, self.cfg.server_id)

    async def stop(self) -> None:
        await self.devices.stop()
        await self.endpoint.close()

    def _rejected(self, reason: str) -> None:
        self.metrics.inc("vsgw_gb28181_rejected_total", reason=reason)

    def settings(self, device_id: str) -> Effective:
        """The device's resolved settings: the API's stored ones over the configuration's."""
        dev = self.devices.get(device_id)
        return self.cfg.resolve(device_id, dev.settings if dev is not None else None)

    def next_sn(self) -> int:
        return next(self._sn)

    def _expires(self, req: SipMessage) -> int:
        """The Expires header, else the Contact's ``expires``, else 3600; at most register_expires_max."""
        raw = req.get("expires")
        if raw is None:
            raw = param((req.get("contact") or "").rpartition(">")[2], "expires") or "3600"
        return min(number(raw, 0, EXPIRES_MAX, "bad_expires"), self.cfg.register_expires_max)

    # -- incoming ----------------------------------------------------------------------------
    async def _handle(self, req: SipMessage, peer: Peer) -> None:
        method = req.method or ""
        if method == "REGISTER":
            self._register(req, peer)
        elif method == "MESSAGE":
            self._message(req, peer)
        elif method == "ACK":
            return
        elif method == "INVITE":
            self._refuse_invite(req, peer)
        elif method in self.on_request:
            if self.auth.sender(req, peer) is None:
                return
            result = self.on_request[method](req, peer)
            if asyncio.iscoroutine(result):
                await result
        else:
            self.endpoint.reply(req, response(req, 501, to_tag=self.tag), peer)

    def _refuse_invite(self, req: SipMessage, peer: Peer) -> None:
        """A device's own INVITE (voice broadcast or talk: it asks for the platform's audio) is
        answered 488 with the reason in a Warning: the gateway sends no audio to devices."""
        dev = self.auth.sender(req, peer)
        if dev is None:
            return
        broadcast = b"m=audio" in req.body
        reason = ("voice broadcast/talk (audio to the device) is not supported" if broadcast
                  else "a session opened by the device is not supported")
        log.info("GB INVITE from %s refused with 488: %s", dev.id, reason)
        self.metrics.inc("vsgw_gb28181_invite_refused_total", reason="broadcast" if broadcast else "device_invite")
        resp = response(req, 488, to_tag=self.tag, source=peer.addr)
        resp.add("Warning", f'399 vsgw "{reason}"')
        self.endpoint.reply(req, resp, peer)

    def _register(self, req: SipMessage, peer: Peer) -> None:
        device_id = uri_user(req.get("from") or "")
        if not device_id:
            log.info("GB register refused: no device ID in From")
            self._rejected("register_no_device_id")
            self.endpoint.reply(req, response(req, 400, source=peer.addr), peer)
            return
        if self.cfg.password_for(device_id) is None:
            self.metrics.inc("vsgw_gb28181_register_total", result="unknown_device")
            log.info("GB register %s refused: unknown device", device_id)
            self.auth.reply(req, peer, 403)
            return
        expires = self._expires(req)
        if 0 < expires < self.cfg.register_expires_min:
            out = response(req, 423, "Interval Too Brief", to_tag=self.tag, source=peer.addr)
            out.add("Min-Expires", str(self.cfg.register_expires_min))
            log.info("GB register %s refused: Expires %d below %d", device_id, expires, self.cfg.register_expires_min)
            self.endpoint.reply(req, out, peer)
            return
        auth = digest.parse_header(req.get("authorization") or "")
        if not auth:
            log.debug("GB register %s: digest challenge", device_id)
            self.auth.challenge(req, peer, device_id)
            return
        problem = self.auth.check(auth, device_id, peer, "REGISTER")
        if problem is not None and problem.startswith("nonce_"):  # replayed, expired, foreign or forged
            self._rejected(problem)
            log.info("GB register %s challenged again: %s", device_id, problem)
            self.auth.challenge(req, peer, device_id)
            return
        if problem is not None:
            self.metrics.inc("vsgw_gb28181_register_total", result=problem)
            log.info("GB register %s refused: %s", device_id, problem)
            self.auth.reply(req, peer, 403)
            return
        eff = self.settings(device_id)
        out = response(req, 200, to_tag=self.tag, source=peer.addr)
        # devices take the zone-less Date as their local time: the device's zone, not the host's
        out.add("Date", datetime.now(eff.zone).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3])
        out.add("Expires", str(expires))
        if req.get("contact"):
            out.add("Contact", req.get("contact") or "")
        self.endpoint.reply(req, out, peer)
        if expires == 0:
            self.metrics.inc("vsgw_gb28181_register_total", result="unregister")
            log.info("GB register %s over %s: unregistered", device_id, peer.transport)
            self.devices.unregistered(device_id)
            return
        self.metrics.inc("vsgw_gb28181_register_total", result="ok")
        log.info("GB register %s over %s: ok, expires %d s", device_id, peer.transport, expires)
        dev = self.devices.registered(device_id, peer, req.get("contact") or "", expires, req.get("x-gb-ver") or "")
        self.devices.configure(dev, eff)

    def _message(self, req: SipMessage, peer: Peer) -> None:
        user = uri_user(req.get("from") or "")
        named = self.devices.identify(user)
        try:
            msg = manscdp.parse(req.body, named.charset if named else self.cfg.charset_for(user))
        except XmlError as exc:
            self._rejected(f"xml_{exc.reason}")
            self.endpoint.reply(req, response(req, 400, to_tag=self.tag, source=peer.addr), peer)
            return
        for fix in msg.repaired:
            self.metrics.inc("vsgw_gb28181_xml_repaired_total", fix=fix)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("GB MESSAGE from %s: %s", user, req.body.decode("gb18030", errors="replace"))
        keepalive = msg.kind == "notify" and msg.cmd.lower() == "keepalive"
        dev = self.auth.sender(req, peer)
        if dev is None:
            if keepalive and (named is None or not named.registered):  # forgotten, unknown, or lapsed
                self.metrics.inc("vsgw_gb28181_keepalive_total", result="unregistered")
            return
        self.devices.seen(dev, "keepalive" if keepalive else "message")
        self.auth.reply(req, peer, 200)
        if keepalive:
            self.metrics.inc("vsgw_gb28181_keepalive_total", result="ok")
            return
        if msg.kind == "response" and self.collector.feed(msg, dev.id):
            return
        for fn in self.on_message:
            fn(dev, msg)

    # -- outgoing ----------------------------------------------------------------------------
    def new_request(self, method: str, dev: Device, target_id: str, body: bytes = b"",
                    content_type: str | None = None, call_id: str | None = None,
                    to_tag: str | None = None, cseq: int | None = None) -> SipMessage:
        host, port = self.endpoint.host, self.endpoint.port
        realm = self.cfg.realm
        peer_host, peer_port = dev.peer.addr
        msg = SipMessage(method=method, uri=f"sip:{target_id}@{peer_host}:{peer_port}")
        proto = "TCP" if dev.peer.transport == "tcp" else "UDP"
        msg.add("Via", f"SIP/2.0/{proto} {host}:{port};rport;branch={new_branch()}")
        msg.add("From", f"<sip:{self.cfg.server_id}@{realm}>;tag={self.tag}")
        msg.add("To", f"<sip:{target_id}@{realm}>" + (f";tag={to_tag}" if to_tag else ""))
        msg.add("Call-ID", call_id or new_call_id(host))
        msg.add("CSeq", f"{cseq or next(self._cseq)} {method}")
        msg.add("Max-Forwards", "70")
        msg.add("User-Agent", USER_AGENT)
        if content_type:
            msg.add("Content-Type", content_type)
        msg.body = body
        return msg

    async def send_manscdp(self, dev: Device, kind: str, cmd: str, target_id: str, sn: int,
                           fields: list[tuple[str, object]] | None = None) -> SipMessage:
        body = manscdp.build(kind, cmd, sn, target_id, fields)
        req = self.new_request("MESSAGE", dev, target_id, body, manscdp.CONTENT_TYPE)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("GB MESSAGE to %s: %s", dev.id, body.decode("gb18030", errors="replace"))
        resp = await self.endpoint.request(req, dev.peer)
        if resp.status != 200:
            raise DeviceRefused(resp.status or 0, resp.reason)
        return resp

    async def query(self, dev: Device, cmd: str, target_id: str | None = None,
                    fields: list[tuple[str, object]] | None = None, timeout: float | None = None) -> Answer:
        """Send a Query and collect its Response packet(s)."""
        target = target_id or dev.id
        sn = self.next_sn()
        key = self.collector.expect(target, cmd, sn, dev.id)
        try:
            await self.send_manscdp(dev, "Query", cmd, target, sn, fields)
        except BaseException:
            self.collector.cancel(key)
            raise
        return await self.collector.wait(key, timeout or self.cfg.catalog_timeout)


class DeviceRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"device answered {status} {reason}")
        self.status = status


