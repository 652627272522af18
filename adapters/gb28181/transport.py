"""SIP over UDP and TCP (Content-Length framing) with RFC 3261 transactions (R1).

One :class:`Endpoint` serves both the gateway (listens on UDP+TCP) and the simulator (UDP socket or
one outgoing TCP connection). Client transactions retransmit over UDP (T1 doubling to T2) and match
responses by Via branch; server transactions replay their final response to a retransmitted
request instead of handling it twice. Malformed input is counted, never raised: a request whose
headers parsed but hold an invalid value is answered 400, anything else is dropped. A TCP peer
names its connection, so a later connection from the same address is a different peer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .sip import SipError, SipMessage, parse, response, via_address

log = logging.getLogger(__name__)
T1, T2 = 0.5, 4.0
MAX_TCP_BUFFER = 512 * 1024
UDP_RCVBUF = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message came from and how to reach it again."""

    transport: str  # "udp" | "tcp"
    addr: tuple[str, int]
    conn: int = 0  # TCP: the connection's serial (0 for UDP, or for one no longer known)


Handler = Callable[[SipMessage, Peer], Awaitable[None]]
Reject = Callable[[str], None]
Closed = Callable[[Peer], None]


class Endpoint:
    def __init__(self, handler: Handler, on_reject: Reject = lambda reason: None, timeout: float = 32 * T1,
                 on_closed: Closed = lambda peer: None) -> None:
        self.handler = handler
        self.on_reject = on_reject
        self.on_closed = on_closed  # a TCP connection ended (not called while the endpoint closes)
        self.timeout = timeout
        self.closing = False
        self._serials = itertools.count(1)
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp_server: asyncio.base_events.Server | None = None
        self.conns: dict[tuple[str, int], _TcpConn] = {}
        self._pending: dict[str, asyncio.Future[SipMessage]] = {}
        self._provisional: dict[str, Callable[[SipMessage], None]] = {}
        self.response_hooks: dict[str, Callable[[SipMessage], None]] = {}  # branch -> INVITE client transaction
        self._answered: OrderedDict[tuple[str, str, str], tuple[bytes, Peer]] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self.port = 0
        self.host = "127.0.0.1"

    # -- binding ---------------------------------------------------------------------------
    async def listen(self, host: str, port: int, tcp: bool = True) -> int:
        """UDP and TCP on the same port (port 0 picks one free for both)."""
        loop = asyncio.get_running_loop()
        for _ in range(20):
            udp, _p = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(host, port))
            bound = udp.get_extra_info("sockname")[1]
            if not tcp:
                break
            try:
                self.tcp_server = await loop.create_server(lambda: _TcpConn(self), host, bound)
                break
            except OSError:
                udp.close()
                if port:
                    raise
        else:
            raise OSError("no free port for SIP UDP+TCP")
        sock = udp.get_extra_info("socket")
        if sock is not None:  # a registration storm (every device after a restart) must not overflow it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
        self.udp, self.host, self.port = udp, host, bound
        return bound

    async def connect(self, host: str, port: int, local_host: str = "127.0.0.1") -> Peer:
        """An outgoing TCP connection (device side); messages on it are handled like any other."""
        loop = asyncio.get_running_loop()
        _t, conn = await loop.create_connection(lambda: _TcpConn(self), host, port, local_addr=(local_host, 0))
        self.host, self.port = conn.local[0], conn.local[1]
        return conn.peer

    async def close(self) -> None:
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
        if self.udp is not None:
            self.udp.close()
        if self.tcp_server is not None:
            self.tcp_server.close()
        for conn in list(self.conns.values()):
            conn.transport.close()
        if self.tcp_server is not None:
            await self.tcp_server.wait_closed()
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()

    # -- sending ---------------------------------------------------------------------------
    def send(self, msg: SipMessage | bytes, peer: Peer) -> bool:
        data = msg.encode() if isinstance(msg, SipMessage) else msg
        if peer.transport == "udp":
            if self.udp is None:
                return False
            self.udp.sendto(data, peer.addr)
            return True
        conn = self.conns.get(peer.addr)
        if conn is None or conn.transport.is_closing() or conn.peer != peer:
            return False
        conn.transport.write(data)
        return True

    def reply(self, req: SipMessage, resp: SipMessage, peer: Peer) -> None:
        """Send a response to the Via rport/source and remember it for retransmitted requests."""
        dest = Peer(peer.transport, via_address(req, peer.addr)) if peer.transport == "udp" else peer
        data = resp.encode()
        self.send(data, dest)
        if resp.status and resp.status >= 200:
            key = (req.branch, req.method or "", req.call_id)
            self._answered[key] = (data, dest)
            while len(self._answered) > 4096:
                self._answered.popitem(last=False)

    async def request(self, msg: SipMessage, peer: Peer, *, timeout: float | None = None,
                      on_provisional: Callable[[SipMessage], None] | None = None) -> SipMessage:
        """Send a request and await its final response (TimeoutError when none comes)."""
        key = msg.branch
        fut: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        if on_provisional is not None:
            self._provisional[key] = on_provisional
        data = msg.encode()
        try:
            async with asyncio.timeout(timeout or self.timeout):
                if not self.send(data, peer):
                    raise ConnectionError(f"no route to {peer}")
                if peer.transport == "tcp":
                    return await fut
                interval = T1
                while True:
                    try:
                        return await asyncio.wait_for(asyncio.shield(fut), interval)
                    except TimeoutError:
                        if not self._provisional.get(key + ":got"):
                            self.send(data, peer)
                        interval = min(interval * 2, T2)
        finally:
            self._pending.pop(key, None)
            self._provisional.pop(key, None)
            self._provisional.pop(key + ":got", None)

    # -- receiving ---------------------------------------------------------------------------
    def _received(self, data: bytes, peer: Peer) -> None:
        if not data.strip():
            return  # CRLF keepalive
        try:
            msg = parse(data)
        except SipError as exc:
            self.on_reject(exc.reason)
            bad = exc.message
            if bad is not None and bad.is_request and bad.method != "ACK":
                self.reply(bad, response(bad, 400, f"Bad Request ({exc.reason})", source=peer.addr), peer)
            log.debug("malformed SIP from %s: %s", peer.addr, exc)
            return
        if msg.is_request:
            key = (msg.branch, msg.method or "", msg.call_id)
            cached = self._answered.get(key)
            if cached is not None and msg.method != "ACK":
                self.send(cached[0], cached[1])
                return
            task = asyncio.get_running_loop().create_task(self._handle(msg, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        key = msg.branch
        hook = self.response_hooks.get(key)
        if hook is not None:  # every response of it, retransmitted 2xx included, and its CANCEL's
            hook(msg)
            return
        if msg.status is not None and msg.status < 200:
            cb = self._provisional.get(key)
            if cb is not None:
                self._provisional[key + ":got"] = cb  # stop retransmitting (RFC 3261 17.1.1.2)
                cb(msg)
            return
        fut = self._pending.get(key)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    async def _handle(self, msg: SipMessage, peer: Peer) -> None:
        try:
            await self.handler(msg, peer)
        except SipError as exc:
            self.on_reject(exc.reason)
        except Exception:
            self.on_reject("handler_error")
            log.exception("SIP %s handler failed", msg.method)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.ep._received(data, Peer("udp", (addr[0], addr[1])))


class _TcpConn(asyncio.Protocol):
    """Splits a TCP byte stream into messages by the blank line and Content-Length."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.buf = bytearray()
        self.transport: asyncio.Transport
        self.remote: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.peer = Peer("tcp", self.remote)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.remote, self.local = (peer[0], peer[1]), (sock[0], sock[1])
        self.peer = Peer("tcp", self.remote, next(self.ep._serials))
        self.ep.conns[self.remote] = self

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ep.conns.get(self.remote) is self:
            del self.ep.conns[self.remote]
        if not self.ep.closing:
            self.ep.on_closed(self.peer)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        peer = self.peer
        while True:
            while self.buf[:2] == b"\r\n":  # keepalive CRLFs between messages
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_TCP_BUFFER:
                    self._abort("header_too_large")
                return
            length = _content_length(bytes(self.buf[:end]))
            if length is None:
                self._abort("bad_content_length")
                return
            total = end + 4 + length
            if total > MAX_TCP_BUFFER:
                self._abort("too_large")
                return
            if len(self.buf) < total:
                return
            chunk = bytes(self.buf[:total])
            del self.buf[:total]
            self.ep._received(chunk, peer)

    def _abort(self, reason: str) -> None:
        """A TCP stream that cannot be re-framed is closed; the device reconnects."""
        self.ep.on_reject(reason)
        self.buf.clear()
        self.transport.close()


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            value = value.strip()
            return int(value) if value.isdigit() else None
    return 0
