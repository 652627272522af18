"""ZeroMQ bus: every node PUBlishes into an XSUB/XPUB proxy and SUBscribes from it.

One node (``bus.proxy = true``) runs the proxy; the rest only connect. A node receives its own
events back through the proxy, so every subscriber everywhere sees one order per publisher.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import zmq
import zmq.asyncio

from gateway.tasks import cancel_and_wait

from .base import Bus
from .events import Event

log = logging.getLogger(__name__)


class ZmqProxy:
    """XSUB (publishers connect) ↔ XPUB (subscribers connect), run by libzmq in a daemon thread.

    The proxy owns its context and is stopped by terminating it, which libzmq turns into
    ``ContextTerminated`` inside the proxy loop. (A steerable proxy's TERMINATE command was
    sometimes never acted on under traffic, which left ``stop`` waiting forever.) A daemon
    thread, not the loop's executor: a proxy never stopped must not hold interpreter exit.
    """

    def __init__(self, xsub: str, xpub: str) -> None:
        self.xsub, self.xpub = xsub, xpub
        self._ctx = zmq.Context()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        front, back = self._ctx.socket(zmq.XSUB), self._ctx.socket(zmq.XPUB)
        try:
            front.bind(self.xsub)
            back.bind(self.xpub)
        except zmq.ZMQError:
            front.close(linger=0)
            back.close(linger=0)
            raise

        def run() -> None:
            try:
                zmq.proxy(front, back)
            except zmq.ContextTerminated:
                pass
            finally:
                front.close(linger=0)
                back.close(linger=0)

        self._thread = threading.Thread(target=run, name="vsgw-bus-proxy", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._thread = None
        await asyncio.get_running_loop().run_in_executor(None, self._ctx.term)  # returns once the proxy closed


class ZmqBus(Bus):
    def __init__(self, node: str, xsub: str, xpub: str, *, run_proxy: bool = False) -> None:
        super().__init__(node)
        self._ctx = zmq.asyncio.Context()
        self._proxy = ZmqProxy(xsub, xpub) if run_proxy else None
        self._xsub, self._xpub = xsub, xpub
        self._pub: zmq.asyncio.Socket | None = None
        self._sub: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self.malformed = 0

    async def start(self) -> None:
        """Connect (and run the proxy); if the proxy is unreachable, release everything and raise."""
        try:
            await self._connect()
        except BaseException:
            await self.stop()
            raise

    async def _connect(self) -> None:
        if self._proxy is not None:
            self._proxy.start()
        self._pub = self._ctx.socket(zmq.PUB)
        self._pub.setsockopt(zmq.SNDHWM, 10_000)
        self._pub.connect(self._xsub)
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._sub.connect(self._xpub)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self._wait_connected()

    async def _wait_connected(self, timeout: float = 5.0) -> None:
        """PUB/SUB joins are asynchronous: send probes until one comes back through the proxy."""
        assert self._pub is not None
        probe = b"_probe." + self.node.encode()
        self._probe = asyncio.get_running_loop().create_future()
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._probe.done():
            self._pub.send_multipart([probe, b"{}"])
            try:
                await asyncio.wait_for(asyncio.shield(self._probe), 0.05)
            except TimeoutError:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"bus proxy not reachable at {self._xsub} / {self._xpub}") from None

    async def _read(self) -> None:
        assert self._sub is not None
        while True:
            topic, payload = await self._sub.recv_multipart()
            if topic.startswith(b"_probe."):
                if topic == b"_probe." + self.node.encode() and not self._probe.done():
                    self._probe.set_result(None)
                continue
            try:
                event = Event.from_dict(json.loads(payload))
            except (ValueError, KeyError, TypeError) as exc:
                self.malformed += 1
                log.warning("dropped malformed bus message on %r: %s", topic[:64], exc)
                continue
            self._dispatch(event)

    def _send(self, event: Event) -> None:
        assert self._pub is not None, "bus not started"
        payload = json.dumps(event.to_dict(), separators=(",", ":")).encode()
        self._pub.send_multipart([event.topic.encode(), payload], flags=zmq.NOBLOCK)

    async def stop(self) -> None:
        await super().stop()
        await cancel_and_wait(self._reader)
        for sock in (self._pub, self._sub):
            if sock is not None:
                sock.close(linger=0)
        if self._proxy is not None:
            await self._proxy.stop()
        self._ctx.destroy(linger=0)  # closes anything left open instead of waiting for it
