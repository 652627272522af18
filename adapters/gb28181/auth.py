"""Who a SIP request speaks for, and whether to believe it (R18).

``From`` alone proves nothing: anyone can write a device's ID. A request naming a registered
device (or one of its channels) is believed when it arrives over the transport that device
registered over (:mod:`.devices`). From anywhere else it is refused 403, or — with
``[sip] foreign_source = "challenge"`` — answered 401 and believed once it carries a digest of a
fresh nonce issued to that device at that source. Either way the binding stays where the last
authenticated REGISTER put it. Every refusal is counted in
``vsgw_gb28181_rejected_total{reason=...}``.
"""

from __future__ import annotations

import logging
from typing import Any

from . import digest
from .config import SipConfig
from .devices import Device, Devices
from .nonces import Nonces
from .sip import SipMessage, response, uri_user
from .transport import Endpoint, Peer

log = logging.getLogger(__name__)
# methods that only continue a dialog: the device bound to the socket may use an ID it never reported
IN_DIALOG = ("BYE", "INFO")


class Authenticator:
    def __init__(self, cfg: SipConfig, metrics: Any, devices: Devices, endpoint: Endpoint, tag: str) -> None:
        self.cfg, self.metrics, self.devices, self.endpoint, self.tag = cfg, metrics, devices, endpoint, tag
        self.nonces = Nonces()

    def rejected(self, reason: str) -> None:
        self.metrics.inc("vsgw_gb28181_rejected_total", reason=reason)

    def sender(self, req: SipMessage, peer: Peer) -> Device | None:
        """The device ``req`` may speak for, or None after answering it (403 or 401)."""
        user = uri_user(req.get("from") or "")
        dev = self.devices.identify(user)
        if dev is None and req.method in IN_DIALOG:
            dev = self.devices.bound_to(peer)
        if dev is None or not dev.registered:  # no registration: nothing speaks for the device
            self.rejected("unregistered")
            self.reply(req, peer, 403, "Register First")
            return None
        if dev.peer == peer:
            return dev
        if self.cfg.foreign_source == "challenge":
            return self._challenged(req, peer, dev)
        self.rejected("foreign_source")
        log.debug("%s for %s from %s refused: registered over %s", req.method, dev.id, peer, dev.peer.transport)
        self.reply(req, peer, 403, "Not From The Registered Transport")
        return None

    def _challenged(self, req: SipMessage, peer: Peer, dev: Device) -> Device | None:
        auth = digest.parse_header(req.get("authorization") or "")
        problem = self.check(auth, dev.id, peer, req.method or "") if auth else "foreign_source"
        if problem is None:
            self.metrics.inc("vsgw_gb28181_foreign_source_total", result="authenticated")
            return dev
        self.rejected(problem)
        self.challenge(req, peer, dev.id)
        return None

    def check(self, auth: dict[str, str], device_id: str, peer: Peer, method: str) -> str | None:
        """None when ``auth`` is a good digest for ``device_id`` over ``peer``, else the reason."""
        password = self.cfg.password_for(device_id)
        if password is None:
            return "unknown_device"
        if auth.get("username") != device_id or auth.get("realm") != self.cfg.realm:
            return "digest_identity"
        if auth.get("algorithm", "MD5").upper() != "MD5" or auth.get("qop", "auth") != "auth":
            return "digest_algorithm"
        problem = self.nonces.take(auth.get("nonce", ""), device_id, peer)
        if problem is not None:
            return problem
        return None if digest.verify(auth, password, method) else "wrong_password"

    def challenge(self, req: SipMessage, peer: Peer, device_id: str) -> None:
        out = response(req, 401, to_tag=self.tag, source=peer.addr)
        out.add("WWW-Authenticate", digest.challenge(self.cfg.realm, self.nonces.issue(device_id, peer)))
        self.endpoint.reply(req, out, peer)

    def reply(self, req: SipMessage, peer: Peer, status: int, reason: str | None = None) -> None:
        self.endpoint.reply(req, response(req, status, reason, to_tag=self.tag, source=peer.addr), peer)
