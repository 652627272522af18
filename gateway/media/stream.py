"""One ``Stream`` per channel: one writer, many readers, a GOP cache, bounded readers.

The writer (the ingest task) calls :meth:`Stream.write`, which never awaits: each reader owns a
bounded queue (by bytes and by buffered media time); a reader that falls behind drops what it
holds and skips to the next keyframe, so the writer and the other readers never wait for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
import logging
import random
import time

from gateway.policy.model import LIVE, Decision, InternalAccess, require
from gateway.tasks import cancel_and_wait

from .unit import CLOCK_RATE, AccessUnit

log = logging.getLogger(__name__)

Source = Callable[[], AsyncIterator[AccessUnit]]


class StreamClosed(Exception):
    """The reader was closed, or its stream ended for good."""


class SourceGone(Exception):
    """Raised by a source that gave up for good (e.g. a camera that sent no media after its bounded
    retries): the stream reports the message as its reason and stops instead of reopening it."""


@dataclass(slots=True)
class ReaderLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_delay: float = 2.0  # seconds of media buffered before the reader skips ahead


class Reader:
    """A consumer's view of a stream; iterate it or ``await get()``."""

    def __init__(self, stream: Stream, limits: ReaderLimits, name: str) -> None:
        self.stream = stream
        self.name = name
        self._limits = limits
        self._base_ticks = self._max_ticks = int(limits.max_delay * CLOCK_RATE)
        self._queue: deque[AccessUnit] = deque()
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._need_key = False
        self.closed = False
        self.skips = 0  # times this reader fell behind and skipped to a keyframe
        self.dropped = 0  # access units it never received because of that
        self.delivered = 0

    def push(self, unit: AccessUnit) -> None:
        """Called by the writer only; O(1) and never blocks."""
        if self._need_key:
            if not unit.keyframe:
                self.dropped += 1
                return
            self._need_key = False
        queue = self._queue
        if queue and (
            self._bytes + unit.size > self._limits.max_bytes
            or unit.dts - queue[0].dts > self._max_ticks
        ):
            self.skips += 1
            self.dropped += len(queue)
            queue.clear()
            self._bytes = 0
            if not unit.keyframe:
                self._need_key = True
                self.dropped += 1
                return
        queue.append(unit)
        self._bytes += unit.size
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def replay(self, units: list[AccessUnit]) -> None:
        """The cached GOP on join. It is as old as the GOP is long by design, so its span is allowed
        on top of ``max_delay`` until the reader first catches up (else a reader joining late in a
        GOP longer than ``max_delay`` would skip its own start and wait for the next keyframe)."""
        if units:
            self._max_ticks = self._base_ticks + units[-1].dts - units[0].dts
        for unit in units:
            self.push(unit)

    def get_nowait(self) -> AccessUnit | None:
        if not self._queue:
            if self.closed:
                raise StreamClosed(self.name)
            return None
        unit = self._queue.popleft()
        if not self._queue:
            self._max_ticks = self._base_ticks  # caught up: from now on it is bounded as usual
        self._bytes -= unit.size
        self.delivered += 1
        return unit

    async def get(self) -> AccessUnit:
        while True:
            unit = self.get_nowait()
            if unit is not None:
                return unit
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[AccessUnit]:
        return self

    async def __anext__(self) -> AccessUnit:
        try:
            return await self.get()
        except StreamClosed:
            raise StopAsyncIteration from None

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self.stream.remove(self)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class StreamStats:
    key: str
    running: bool
    codec: str | None
    fps: float
    bitrate: float  # bit/s over the last window
    keyframe_interval: float | None  # seconds between the last two keyframes
    readers: int
    skips: int
    dropped: int
    units: int
    bytes: int
    last_unit_time: float | None  # Unix seconds
    restarts: int
    last_error: str | None
    audio_codec: str | None = None


class Stream:
    """A channel's live stream; ingest runs only while someone reads (plus a linger)."""

    STATS_WINDOW = 2.0
    GOP_CACHE_MAX_BYTES = 16 * 1024 * 1024

    def __init__(
        self,
        key: str,
        source: Source,
        *,
        linger: float = 5.0,
        on_state: Callable[[Stream, bool, str | None], None] | None = None,
        backoff: tuple[float, float] = (0.5, 15.0),
    ) -> None:
        self.key = key
        self._source = source
        self.linger = linger
        self._on_state = on_state
        self._backoff = backoff
        self.readers: set[Reader] = set()
        self.gop: list[AccessUnit] = []
        self._gop_bytes = 0
        self.codec: str | None = None  # video
        self.audio_codec: str | None = None  # once an audio unit came
        self.audio_units = 0
        self.params: tuple[bytes, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._window: deque[tuple[float, int, int]] = deque()  # (time, picture bytes or 0 for audio, bytes)
        self._keyframe_times: deque[float] = deque(maxlen=2)
        self._retired_skips = 0
        self._retired_dropped = 0
        self.units = 0
        self.bytes = 0
        self.last_unit_time: float | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.first_unit = asyncio.Event()

    # -- readers -----------------------------------------------------------------
    def subscribe(
        self, access: Decision | InternalAccess, name: str = "reader", limits: ReaderLimits | None = None, *,
        from_gop: bool = True,
    ) -> Reader:
        """A new reader, only for an allowing live decision on this camera or an explicit internal reader
        (access is checked where a reader is added); with ``from_gop`` it starts at the cached keyframe."""
        require(access, self.key.partition("#")[0], LIVE)
        reader = Reader(self, limits or ReaderLimits(), name)
        if from_gop:
            reader.replay(self.gop)
        else:
            reader._need_key = True
        self.readers.add(reader)
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ingest:{self.key}")
        return reader

    def remove(self, reader: Reader) -> None:
        if reader not in self.readers:
            return
        self.readers.discard(reader)
        self._retired_skips += reader.skips
        self._retired_dropped += reader.dropped
        reader.close()
        if not self.readers and self._task is not None and self._linger_handle is None:
            loop = asyncio.get_running_loop()
            self._linger_handle = loop.call_later(self.linger, self._stop_ingest)

    # -- writer ------------------------------------------------------------------
    def write(self, unit: AccessUnit) -> None:
        """Audio units join the GOP cache after its keyframe like pictures do (a joining reader gets the
        sound since that keyframe) but never start one; ``codec`` and ``fps`` describe the video."""
        now = time.time()
        if unit.keyframe:
            self.gop = [unit]
            self._gop_bytes = unit.size
            self._keyframe_times.append(now)
            if unit.params:
                self.params = unit.params
        elif self.gop and self._gop_bytes + unit.size <= self.GOP_CACHE_MAX_BYTES:
            self.gop.append(unit)
            self._gop_bytes += unit.size
        audio = unit.is_audio
        if audio:
            self.audio_codec = unit.codec
            self.audio_units += 1
        else:
            self.codec = unit.codec
        self.units += 1
        self.bytes += unit.size
        self.last_unit_time = now
        window = self._window
        window.append((now, 0 if audio else unit.size, unit.size))
        while now - window[0][0] > self.STATS_WINDOW:
            window.popleft()
        for reader in self.readers:
            reader.push(unit)
        if not audio and not self.first_unit.is_set():
            self.first_unit.set()

    # -- ingest lifecycle --------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            reason: str | None = "source ended"
            started = False
            try:
                async for unit in self._source():
                    if not started:
                        started = True
                        delay = self._backoff[0]
                        self.last_error = None
                        self._notify(True, None)
                    self.write(unit)
            except asyncio.CancelledError:
                if started:
                    self._notify(False, "stopped")
                raise
            except SourceGone as exc:
                self._give_up(str(exc))
                return
            except Exception as exc:  # an adapter failure must never take the hub down
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("stream %s ingest failed: %s", self.key, reason)
            self.last_error = reason
            self.restarts += 1
            if started:
                self._notify(False, reason)
            self.gop = []
            self._gop_bytes = 0
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff[1])

    def _give_up(self, reason: str) -> None:
        """Stop for good: readers end (StreamClosed), the next subscriber starts a fresh ingest."""
        log.warning("stream %s stopped: %s", self.key, reason)
        self.last_error = reason
        self._task = None  # before the readers go, so no linger is armed for this ending task
        self.gop = []
        self._gop_bytes = 0
        self.first_unit = asyncio.Event()
        self._notify(False, reason)
        for reader in list(self.readers):
            reader.close()

    def _notify(self, running: bool, reason: str | None) -> None:
        if self._on_state is not None:
            self._on_state(self, running, reason)

    def _stop_ingest(self) -> None:
        self._linger_handle = None
        if self.readers or self._task is None:
            return
        self._task.cancel()
        self._task = None
        self.gop = []
        self._gop_bytes = 0
        self.first_unit = asyncio.Event()

    async def close(self) -> None:
        for reader in list(self.readers):
            reader.close()
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        task, self._task = self._task, None
        await cancel_and_wait(task)

    # -- stats -------------------------------------------------------------------
    def stats(self) -> StreamStats:
        now = time.time()
        window = [item for item in self._window if now - item[0] <= self.STATS_WINDOW]
        span = self.STATS_WINDOW if window else 1.0
        pictures = sum(1 for item in window if item[1])
        kf = self._keyframe_times
        return StreamStats(
            key=self.key,
            running=self.running,
            codec=self.codec,
            fps=round(pictures / span, 2),
            bitrate=round(sum(item[2] for item in window) * 8 / span, 1),
            keyframe_interval=round(kf[1] - kf[0], 3) if len(kf) == 2 else None,
            readers=len(self.readers),
            skips=self._retired_skips + sum(r.skips for r in self.readers),
            dropped=self._retired_dropped + sum(r.dropped for r in self.readers),
            units=self.units,
            bytes=self.bytes,
            last_unit_time=self.last_unit_time,
            restarts=self.restarts,
            last_error=self.last_error,
            audio_codec=self.audio_codec,
        )
