"""The bus API both implementations share: ``publish`` never blocks; subscriptions are bounded."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from .events import Event


class Subscription:
    """Events whose topic starts with one of ``prefixes``; the oldest are dropped when full."""

    def __init__(self, bus: Bus, prefixes: tuple[str, ...], maxsize: int) -> None:
        self._bus = bus
        self.prefixes = prefixes
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def matches(self, topic: str) -> bool:
        return not self.prefixes or topic.startswith(self.prefixes)

    def deliver(self, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> Event:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    def __init__(self, node: str = "local") -> None:
        self.node = node
        self._subs: set[Subscription] = set()
        self.published = 0

    async def start(self) -> None:
        """Connect sockets (ZeroMQ); nothing for the in-process bus."""

    async def stop(self) -> None:
        for sub in list(self._subs):
            sub.close()

    def subscribe(self, *prefixes: str, maxsize: int = 1024) -> Subscription:
        sub = Subscription(self, prefixes, maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def _dispatch(self, event: Event) -> None:
        for sub in list(self._subs):
            if sub.matches(event.topic):
                sub.deliver(event)

    def publish(self, event: Event) -> None:
        if not event.node:
            event.node = self.node
        self.published += 1
        self._send(event)

    @abstractmethod
    def _send(self, event: Event) -> None: ...


class LocalBus(Bus):
    """The embedded default: events go straight to this process's subscribers."""

    def _send(self, event: Event) -> None:
        self._dispatch(event)
