"""RTSP cameras from ``[[cameras]]`` with ``kind = "rtsp"`` (R1: pull RTSP cameras; R15: online state).

A channel is online while its stream delivers units, offline with the reason when pulling fails.
Channels nobody watches are probed with one DESCRIBE (a small asyncio client: cheap, typed errors)
every ``probe_interval`` seconds so the camera list shows their real state. Reconnection (exponential backoff with jitter) is the hub's
``Stream`` job: :meth:`RtspAdapter.open` raises or ends, and the hub opens again later.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
import logging

from adapters.base import Adapter, AdapterContext, Channel, NotSupported
from gateway.config import CameraConfig
from gateway.media import AccessUnit
from gateway.metrics import Metrics
from gateway.tasks import cancel_and_wait

from .config import RtspConfig
from .describe import describe
from .errors import BadUrl, RtspError
from .puller import Puller
from .target import Target, parse_target

log = logging.getLogger(__name__)


class RtspAdapter(Adapter):
    kind = "rtsp"

    def __init__(self, cameras: list[CameraConfig], config: RtspConfig, metrics: Metrics | None = None) -> None:
        super().__init__()
        self.config = config
        self._metrics = metrics or Metrics()
        self._channels: dict[str, Channel] = {}
        self._targets: dict[str, Target] = {}
        self._bad: dict[str, BadUrl] = {}
        self._watched: Counter[str] = Counter()
        self._probe_task: asyncio.Task[None] | None = None
        for cam in cameras:
            extra: dict[str, str] = {"transport": cam.transport}
            try:
                target = parse_target(cam)
            except BadUrl as exc:  # one bad camera must not stop the others
                self._bad[cam.id] = exc
                self._count(exc)
                log.warning("rtsp camera %s rejected: %s", cam.id, exc)
                extra["error"] = str(exc)
            else:
                self._targets[cam.id] = target
                extra["url"] = target.display
            self._channels[cam.id] = Channel(cam.id, cam.name or cam.id, self.kind, online=False, extra=extra)

    # -- adapter interface ---------------------------------------------------------------
    async def start(self, ctx: AdapterContext) -> None:
        await super().start(ctx)
        for channel in self._channels.values():
            ctx.channel_seen(channel)
        if self.config.probe_interval > 0 and self._targets:
            self._probe_task = asyncio.get_running_loop().create_task(self._probe_loop(), name="rtsp-probe")

    async def stop(self) -> None:
        await cancel_and_wait(self._probe_task)
        self._probe_task = None

    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def owns(self, channel_id: str) -> bool:
        return channel_id in self._channels

    async def open(self, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        if substream:
            raise NotSupported("rtsp cameras have one stream per configured url")
        if channel_id in self._bad:
            raise self._bad[channel_id]
        target = self._targets[channel_id]
        self._watched[channel_id] += 1
        puller: Puller | None = None
        try:
            puller = Puller(target, open_timeout=self.config.open_timeout, read_timeout=self.config.read_timeout,
                            max_queue=self.config.max_queue)
            puller.start()
            while True:
                unit = await puller.get()
                if not self._channels[channel_id].online:
                    self._set_state(channel_id, True, None, unit.codec)
                yield unit
        except RtspError as exc:
            self._failed(channel_id, exc)
            raise
        finally:
            if puller is not None:
                puller.stop()
                if puller.dropped:
                    self._metrics.inc("vsgw_rtsp_dropped_units_total", puller.dropped, camera=channel_id)
            self._watched[channel_id] -= 1

    # -- state ---------------------------------------------------------------------------
    def _failed(self, channel_id: str, exc: RtspError) -> None:
        self._count(exc)
        log.warning("rtsp camera %s (%s): %s", channel_id, self._targets[channel_id].display, exc)
        self._set_state(channel_id, False, str(exc))

    def _count(self, exc: RtspError) -> None:
        self._metrics.inc("vsgw_rtsp_rejected_total", reason=exc.reason)

    def _set_state(self, channel_id: str, online: bool, reason: str | None, codec: str | None = None) -> None:
        channel = self._channels[channel_id]
        channel.codec = codec or channel.codec
        if reason:
            channel.extra["error"] = reason
        else:
            channel.extra.pop("error", None)
        if self.ctx is not None:  # before flipping: the registry compares against this same object
            self.ctx.channel_state(channel_id, online, reason)
        channel.online = online

    # -- probe ---------------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        gate = asyncio.Semaphore(self.config.probe_concurrency)
        while True:
            idle = [cid for cid in self._targets if not self._watched[cid]]
            await asyncio.gather(*(self._probe(cid, gate) for cid in idle))
            await asyncio.sleep(self.config.probe_interval)

    async def _probe(self, channel_id: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                found = await describe(self._targets[channel_id], self.config.open_timeout)
            except RtspError as exc:
                found, error = None, exc
        if self._watched[channel_id]:
            return  # a stream started meanwhile; it reports the state itself
        channel = self._channels[channel_id]
        if found is not None:
            self._set_state(channel_id, True, None, found.codec)
        elif channel.online or channel.extra.get("error") != str(error):  # log changes only
            self._failed(channel_id, error)
