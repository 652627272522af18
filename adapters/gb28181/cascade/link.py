"""One superior platform: our own SIP endpoint towards it (a UAC from its own local port, UDP or one
TCP connection), the requests we send it, and the subject it is to the gate.

Requests that reach this endpoint are believed only from the superior's address (for TCP: over our
connection to it) and in its server ID; anything else is refused 403 and counted (R18).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from typing import TYPE_CHECKING, Any

from gateway.audit.chain import SYSTEM
from gateway.policy import Subject

from .. import manscdp
from ..sip import SipMessage, new_branch, new_call_id, new_tag
from ..transport import Endpoint, Peer
from .config import CascadeConfig, Superior
from .dialogs import Dialogs
from .events import CascadeState
from .registrar import RegisterFailed, Registrar, Status
from .requests import Requests

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
USER_AGENT = "vsgw"


class Link:
    def __init__(self, gw: Gateway, sup: Superior, cfg: CascadeConfig) -> None:
        self.gw, self.sup, self.cfg = gw, sup, cfg
        self.metrics = gw.metrics
        self.subject = Subject(id=f"superior:{sup.server_id}", kind="client", name=sup.label,
                               roles=frozenset({"platform"}), unit=sup.unit or None, clearance=sup.clearance,
                               tier=sup.tier, address=sup.host)
        self.requests = Requests(self)
        self.dialogs = Dialogs(self)
        self.endpoint = Endpoint(self.requests.handle, self._malformed, timeout=sup.request_timeout,
                                 on_closed=self._closed)
        self.registrar = Registrar(sup, self, gw.metrics, self._changed)
        self.peer: Peer | None = None
        self.tag = new_tag()
        self._cseq = itertools.count(1)
        self._sn = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._audits: set[asyncio.Task[None]] = set()

    @property
    def status(self) -> Status:
        return self.registrar.status

    async def start(self) -> None:
        if self.sup.transport == "udp":
            await self.endpoint.listen(self.sup.local_host, self.sup.local_port, tcp=False)
        self.registrar.start()

    async def stop(self) -> None:
        await self.dialogs.stop()
        await self.registrar.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._audits, return_exceptions=True)  # the last transitions reach the trail
        await self.endpoint.close()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def next_sn(self) -> int:
        return next(self._sn)

    # -- transport ----------------------------------------------------------------------------
    async def ensure_transport(self) -> None:
        """Resolve the superior (each attempt: its address may change) and, over TCP, connect."""
        sup = self.sup
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(sup.host, sup.port, family=socket.AF_INET)
        except OSError:
            raise RegisterFailed(f"cannot resolve the superior's host {sup.host!r}", "unreachable") from None
        ip = infos[0][4][0]
        if sup.transport == "udp":
            self.peer = Peer("udp", (ip, sup.port))
            return
        conn = self.endpoint.conns.get((ip, sup.port))
        if self.peer is not None and conn is not None and conn.peer == self.peer and not conn.transport.is_closing():
            return
        try:
            self.peer = await self.endpoint.connect(ip, sup.port, sup.local_host)
        except OSError as exc:
            self.peer = None
            raise RegisterFailed(f"cannot connect to the superior over TCP ({exc.strerror or type(exc).__name__})",
                                 "unreachable") from None

    def _closed(self, peer: Peer) -> None:
        if peer == self.peer:
            self.registrar.connection_lost()

    def _malformed(self, reason: str) -> None:
        self.metrics.inc("vsgw_cascade_rejected_total", superior=self.sup.server_id, reason=reason)

    # -- requests we send -----------------------------------------------------------------------
    def _request(self, method: str, uri: str, call_id: str, tag: str, to: str, cseq: int) -> SipMessage:
        proto = "TCP" if self.sup.transport == "tcp" else "UDP"
        host, port = self.endpoint.host, self.endpoint.port
        msg = SipMessage(method=method, uri=uri)
        msg.add("Via", f"SIP/2.0/{proto} {host}:{port};rport;branch={new_branch()}")
        msg.add("From", f"<sip:{self.sup.local_id}@{self.sup.realm}>;tag={tag}")
        msg.add("To", to)
        msg.add("Call-ID", call_id)
        msg.add("CSeq", f"{cseq} {method}")
        msg.add("Max-Forwards", "70")
        msg.add("User-Agent", USER_AGENT)
        return msg

    def register_request(self, call_id: str, tag: str, cseq: int, expires: int,
                         authorization: str | None) -> SipMessage:
        sup = self.sup
        msg = self._request("REGISTER", f"sip:{sup.server_id}@{sup.realm}", call_id, tag,
                            f"<sip:{sup.local_id}@{sup.realm}>", cseq)
        msg.add("Contact", f"<sip:{sup.local_id}@{self.endpoint.host}:{self.endpoint.port}>")
        msg.add("Expires", str(expires))
        msg.add("X-GB-Ver", "3.0")
        if authorization:
            msg.add("Authorization", authorization)
        return msg

    def message(self, body: bytes) -> SipMessage:
        """A MANSCDP MESSAGE to the superior, outside any dialog."""
        sup = self.sup
        msg = self._request("MESSAGE", f"sip:{sup.server_id}@{sup.host}:{sup.port}", new_call_id(sup.local_host),
                            self.tag, f"<sip:{sup.server_id}@{sup.realm}>", next(self._cseq))
        msg.add("Content-Type", manscdp.CONTENT_TYPE)
        msg.body = body
        return msg

    async def request(self, msg: SipMessage, timeout: float | None = None) -> SipMessage:
        if self.peer is None:
            raise ConnectionError("no transport to the superior")
        return await self.endpoint.request(msg, self.peer, timeout=timeout)

    async def send_bodies(self, cmd: str, bodies: list[bytes]) -> bool:
        """Response packets in order, each awaiting the superior's 200; False at the first that fails."""
        for i, body in enumerate(bodies):
            try:
                resp = await self.request(self.message(body))
            except (TimeoutError, ConnectionError, OSError) as exc:
                resp_text = type(exc).__name__
            else:
                if resp.status == 200:
                    continue
                resp_text = str(resp.status)
            self.metrics.inc("vsgw_cascade_answer_failures_total", superior=self.sup.server_id, cmd=cmd)
            log.info("GB cascade %s: %s answer packet %d of %d not taken (%s)", self.sup.label, cmd, i + 1,
                     len(bodies), resp_text)
            return False
        return True

    # -- state ----------------------------------------------------------------------------------
    def _changed(self, status: Status) -> None:
        sup = self.sup
        next_attempt = status.next_attempt if status.state == "failed" else None
        self.gw.bus.publish(CascadeState(superior=sup.server_id, state=status.state, reason=status.reason,
                                         next_attempt=next_attempt))
        self.metrics.inc("vsgw_cascade_transitions_total", superior=sup.server_id, state=status.state)
        if status.state == "failed":  # the superior is gone (or refuses us): its live dialogs with it
            self.dialogs.close_all(f"the link failed: {status.reason}", hang_up=False)
        if status.state in ("registered", "failed", "stopped"):
            task = asyncio.get_running_loop().create_task(self._audit(status.state, status.reason))
            self._audits.add(task)
            task.add_done_callback(self._audits.discard)

    async def _audit(self, state: str, reason: str) -> None:
        try:
            await self.gw.audit.record(actor=SYSTEM, action=f"cascade.{state}", resource=f"superior:{self.sup.server_id}",
                                       decision="done", reason=reason, extra={"local_id": self.sup.local_id})
        except Exception:  # noqa: BLE001 - the audit chain logs its own write failures
            self.metrics.inc("vsgw_cascade_audit_failures_total", superior=self.sup.server_id)
