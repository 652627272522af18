"""The hub: one :class:`Stream` per channel key, opened through the adapter that owns it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from gateway.policy.model import Decision, InternalAccess

from .stream import Reader, ReaderLimits, Stream
from .unit import AccessUnit

Opener = Callable[[str], AsyncIterator[AccessUnit]]
StateListener = Callable[[Stream, bool, str | None], None]


def stream_key(channel_id: str, substream: int = 0) -> str:
    return channel_id if substream == 0 else f"{channel_id}#{substream}"


def parse_key(key: str) -> tuple[str, int]:
    channel, _, sub = key.partition("#")
    return channel, int(sub or 0)


class Hub:
    """Streams are created on first subscribe; ingest lingers after the last reader leaves."""

    def __init__(self, opener: Opener, *, linger: float = 5.0, on_state: StateListener | None = None) -> None:
        self._opener = opener
        self.linger = linger
        self._on_state = on_state
        self.streams: dict[str, Stream] = {}

    def stream(self, key: str) -> Stream:
        stream = self.streams.get(key)
        if stream is None:
            stream = Stream(key, lambda: self._opener(key), linger=self.linger, on_state=self._on_state)
            self.streams[key] = stream
        return stream

    def subscribe(
        self,
        access: Decision | InternalAccess,
        channel_id: str,
        *,
        substream: int = 0,
        name: str = "reader",
        limits: ReaderLimits | None = None,
        from_gop: bool = True,
    ) -> Reader:
        """A reader of ``channel_id``: ``access`` is the gate's decision that allowed it (or an internal
        reader's declaration); the stream checks it before the reader exists."""
        return self.stream(stream_key(channel_id, substream)).subscribe(access, name, limits, from_gop=from_gop)

    async def close(self) -> None:
        for stream in list(self.streams.values()):
            await stream.close()
        self.streams.clear()
