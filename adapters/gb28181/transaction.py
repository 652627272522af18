"""The INVITE client transaction (RFC 3261 §17.1.1) and the caller's duties around it (§9.1, §13.2.2.4).

Timer A retransmits the INVITE over UDP only, doubling, and stops at the first response of any
kind. Without any response the caller gives up after ``calling_timeout``; after a 1xx it waits
``proceeding_timeout`` for the final response and then sends CANCEL — never before a 1xx has
arrived (§9.1), so an INVITE abandoned while still unanswered gets its CANCEL when its first 1xx
comes. Every 2xx is ACKed, retransmissions included (a lost ACK otherwise makes the device hang up
after 64*T1); a 2xx that comes after the caller gave up is ACKed and then BYE'd, so the device keeps
no orphan session. A 3xx–6xx is ACKed on the INVITE's own branch, and again for each retransmission
while Timer D runs. The transaction listens on its branch until Timer B (no final response),
Timer D (3xx–6xx) or Timer M (2xx, RFC 6026) has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .sip import SipMessage, new_branch, param, uri_hostport
from .transport import T1, T2, Endpoint, Peer

log = logging.getLogger(__name__)
TIMER_B = 64 * T1  # no final response: the transaction ends
TIMER_D = 32.0  # 3xx-6xx over UDP: absorb retransmissions of the final response
TIMER_M = 64 * T1  # after a 2xx: ACK its retransmissions (RFC 6026)
BYE_TIMEOUT = 4.0
_COPIED = ("From", "Call-ID", "Max-Forwards", "User-Agent")


class InviteTimeout(TimeoutError):
    """No final response in time; ``provisional`` says whether the device had answered 1xx."""

    def __init__(self, provisional: bool) -> None:
        super().__init__("no final answer to INVITE after 1xx" if provisional else "no answer to INVITE")
        self.provisional = provisional


class InviteClient:
    """One INVITE: :meth:`run` returns its final response (2xx or not) or raises :class:`InviteTimeout`;
    the object then lives on by itself until its timers end it, ACKing and BYEing as above."""

    def __init__(self, endpoint: Endpoint, invite: SipMessage, peer: Peer, *, calling_timeout: float,
                 proceeding_timeout: float, label: str = "", metrics: Any = None,
                 on_end: Callable[[InviteClient], None] | None = None) -> None:
        self.endpoint, self.invite, self.peer = endpoint, invite, peer
        self.calling_timeout, self.proceeding_timeout = calling_timeout, proceeding_timeout
        self.label = label or (invite.uri or "")
        self.metrics = metrics
        self.branch = invite.branch
        self.cseq = invite.cseq[0]
        self.udp = peer.transport == "udp"
        self.provisional: SipMessage | None = None
        self.accepted_tag: str | None = None  # To tag of the 2xx handed to the caller
        self.abandoned = False  # the caller gave up: a 2xx from now on is ACKed and BYE'd
        self.cancel_sent = False
        self._loop = asyncio.get_running_loop()
        self._data = invite.encode()
        self._answered = asyncio.Event()  # any response
        self._final: asyncio.Future[SipMessage] = self._loop.create_future()
        self._acks: dict[str, bytes] = {}  # To tag -> the ACK sent for that final response
        self._timer_a: asyncio.TimerHandle | None = None
        self._interval = T1
        self._end: asyncio.TimerHandle | None = None
        self._cancel_answered = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ended = False
        self._on_end = on_end

    # -- the caller's side ---------------------------------------------------------------------
    async def run(self) -> SipMessage:
        self.endpoint.response_hooks[self.branch] = self._on_response
        self._end_after(TIMER_B)
        if not self._transmit():
            self.end()
            raise ConnectionError(f"{self.label}: no route to {self.peer.addr}")
        if self.udp:
            self._timer_a = self._loop.call_later(self._interval, self._retransmit)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.calling_timeout):
                    await self._answered.wait()
            if not self._answered.is_set():
                raise InviteTimeout(provisional=False)
            try:
                async with asyncio.timeout(self.proceeding_timeout):
                    return await asyncio.shield(self._final)
            except TimeoutError:
                raise InviteTimeout(provisional=True) from None
        except BaseException:  # timeout, or the caller was cancelled: nothing may be left behind
            self.give_up()
            raise

    def give_up(self) -> None:
        """The caller no longer wants the call: CANCEL it once a 1xx is in, BYE any 2xx still to come."""
        if self.accepted_tag is not None:
            return  # the 2xx was handed over: the dialog owns the call now
        self.abandoned = True
        self._stop_timer_a()  # an abandoned INVITE is not sent again: a device that never had it starts nothing
        if self.provisional is not None and not self._final.done():
            self._cancel()

    def end(self) -> None:
        """Stop listening on the branch (the timers do this; so does shutdown)."""
        if self.ended:
            return
        self.ended = True
        self._stop_timer_a()
        if self._end is not None:
            self._end.cancel()
        if self.endpoint.response_hooks.get(self.branch) == self._on_response:
            del self.endpoint.response_hooks[self.branch]
        for task in self._tasks:
            task.cancel()
        if not self._final.done():
            self._final.set_exception(ConnectionError(f"{self.label}: INVITE transaction ended"))
            self._final.exception()  # retrieved here: run() may no longer be waiting for it
        if self._on_end is not None:
            self._on_end(self)

    # -- responses ---------------------------------------------------------------------------------
    def _on_response(self, msg: SipMessage) -> None:
        _dump(self.label, "<-", msg)
        try:
            number, method = msg.cseq
        except ValueError:
            return
        if number != self.cseq:
            return
        if method == "CANCEL":
            self._cancel_answered.set()
            return
        if method != "INVITE" or msg.status is None:
            return
        self._answered.set()
        self._stop_timer_a()
        if msg.status < 200:
            if self.provisional is None:
                self.provisional = msg
                self._end_after(None)  # Proceeding has no Timer B: the caller's bound applies
                if self.abandoned:
                    self._cancel()
            return
        if 200 <= msg.status < 300:
            self._on_2xx(msg)
        else:
            self._on_failure(msg)

    def _on_2xx(self, msg: SipMessage) -> None:
        tag = param(msg.get("to") or "", "tag") or ""
        first = tag not in self._acks
        if first:
            self._acks[tag] = self._ack_2xx(msg).encode()
        self._send(self._acks[tag])
        if not first:
            if self.metrics is not None:
                self.metrics.inc("vsgw_gb28181_2xx_retransmissions_acked_total")
            return
        self._end_after(TIMER_M)
        if not self.abandoned and self.accepted_tag is None and not self._final.done():
            self.accepted_tag = tag
            self._final.set_result(msg)
            return
        # the caller gave up (or a second, forked 2xx): the device must not keep this session
        log.debug("%s: 200 OK after the INVITE was given up: ACK and BYE", self.label)
        if self.metrics is not None:
            self.metrics.inc("vsgw_gb28181_late_2xx_total")
        task = self._loop.create_task(self._bye(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_failure(self, msg: SipMessage) -> None:
        tag = param(msg.get("to") or "", "tag") or ""
        if tag not in self._acks:
            self._acks[tag] = self._ack_failure(msg).encode()
            self._end_after(TIMER_D if self.udp else 0.0)
            if not self._final.done():
                self._final.set_result(msg)
        self._send(self._acks[tag])

    # -- what the transaction sends ----------------------------------------------------------------
    def _transmit(self) -> bool:
        _dump(self.label, "->", self._data)
        return self.endpoint.send(self._data, self.peer)

    def _send(self, data: bytes) -> None:
        _dump(self.label, "->", data)
        self.endpoint.send(data, self.peer)

    def _retransmit(self) -> None:
        self._timer_a = None
        if self._answered.is_set() or self.abandoned or self.ended:
            return
        self._transmit()
        self._interval *= 2  # Timer A doubles without the T2 cap (RFC 3261 §17.1.1.2)
        self._timer_a = self._loop.call_later(self._interval, self._retransmit)

    def _stop_timer_a(self) -> None:
        if self._timer_a is not None:
            self._timer_a.cancel()
            self._timer_a = None

    def _end_after(self, delay: float | None) -> None:
        if self._end is not None:
            self._end.cancel()
        self._end = None if delay is None else self._loop.call_later(delay, self.end)

    def _cancel(self) -> None:
        if self.cancel_sent:
            return
        self.cancel_sent = True
        if self.metrics is not None:
            self.metrics.inc("vsgw_gb28181_invite_cancel_total")
        log.debug("%s: no final answer to INVITE: CANCEL", self.label)
        self._end_after(TIMER_B)  # §9.1: no final response 64*T1 after CANCEL ends the transaction
        task = self._loop.create_task(self._send_cancel())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_cancel(self) -> None:
        """CANCEL is its own non-INVITE transaction on the INVITE's branch, retransmitted T1 → T2."""
        cancel = SipMessage(method="CANCEL", uri=self.invite.uri)
        cancel.add("Via", self.invite.get("via") or "")
        for name in ("From", "To", "Call-ID"):
            cancel.add(name, self.invite.get(name) or "")
        cancel.add("CSeq", f"{self.cseq} CANCEL")
        cancel.add("Max-Forwards", "70")
        data = cancel.encode()
        interval = T1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TIMER_B):
                while not self._cancel_answered.is_set():
                    self._send(data)
                    if not self.udp:
                        return
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(interval):
                            await self._cancel_answered.wait()
                    interval = min(interval * 2, T2)

    async def _bye(self, ok: SipMessage) -> None:
        bye = self._in_dialog(ok, "BYE", self.cseq + 1)
        _dump(self.label, "->", bye)
        try:
            resp = await self.endpoint.request(bye, self.peer, timeout=BYE_TIMEOUT)
            log.info("GB dialog %s: 200 OK came after the INVITE was given up: ACKed, BYE answered %s",
                     self.label, resp.status)
        except (TimeoutError, ConnectionError) as exc:
            log.info("GB dialog %s: 200 OK came after the INVITE was given up: ACKed, BYE unanswered (%s)",
                     self.label, type(exc).__name__)

    def _ack_2xx(self, ok: SipMessage) -> SipMessage:
        """The ACK of a 2xx is a new transaction to the remote target (§13.2.2.4)."""
        return self._in_dialog(ok, "ACK", self.cseq)

    def _ack_failure(self, resp: SipMessage) -> SipMessage:
        """The ACK of a 3xx-6xx belongs to the INVITE's transaction: same branch and URI (§17.1.1.3)."""
        ack = SipMessage(method="ACK", uri=self.invite.uri)
        ack.add("Via", self.invite.get("via") or "")
        ack.add("From", self.invite.get("from") or "")
        ack.add("To", resp.get("to") or "")
        ack.add("Call-ID", self.invite.call_id)
        ack.add("CSeq", f"{self.cseq} ACK")
        ack.add("Max-Forwards", "70")
        return ack

    def _in_dialog(self, ok: SipMessage, method: str, cseq: int) -> SipMessage:
        msg = SipMessage(method=method, uri=remote_target(self.invite, ok))
        via = (self.invite.get("via") or "").split(";", 1)[0]
        msg.add("Via", f"{via};rport;branch={new_branch()}")
        msg.add("To", ok.get("to") or "")
        for name in _COPIED:
            value = self.invite.get(name)
            if value is not None:
                msg.add(name, value)
        msg.add("CSeq", f"{cseq} {method}")
        return msg


def remote_target(invite: SipMessage, ok: SipMessage) -> str:
    """The 2xx's Contact as the request-URI of the dialog's requests, else the INVITE's own."""
    uri = invite.uri or ""
    hostport = uri_hostport(ok.get("contact") or "")
    user = uri.split(":", 1)[-1].split("@", 1)[0]
    return f"sip:{user}@{hostport[0]}:{hostport[1]}" if hostport is not None else uri


def _dump(label: str, direction: str, msg: SipMessage | bytes) -> None:
    """The whole message at DEBUG (``[node] log_level``), encoded only when it will be logged."""
    if log.isEnabledFor(logging.DEBUG):
        data = msg.encode() if isinstance(msg, SipMessage) else msg
        log.debug("%s %s %s", label, direction, data.decode(errors="replace"))
