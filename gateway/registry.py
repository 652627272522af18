"""Live channel registry: which adapter owns which channel, its state, persisted and announced.

Adapters report through :class:`AdapterContext` methods; the registry keeps the in-memory view
the hub and egress read, writes it to the ``channels`` table, and publishes bus events.

A channel ID belongs to the first source that reports it — an adapter, and within a GB/T 28181
adapter the device named in ``channel.extra["device"]``. Another source reporting the same ID is
refused, never silently re-parented: the refusal is published (:class:`ChannelConflict`), counted
(``vsgw_channel_conflicts_total``) and listed in :attr:`ChannelRegistry.conflicts` until the holder
lets the channel go.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
import logging
from typing import Any

from sqlalchemy import select

from adapters.base import Adapter, Channel
from gateway.bus import Bus, ChannelAdded, ChannelConflict, ChannelRemoved, ChannelState, Event
from gateway.metrics import Metrics
from gateway.storage import Database
from gateway.storage.core import ChannelRow
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class UnknownChannel(KeyError):
    pass


@dataclass(slots=True)
class Conflict:
    """A refused claim on a channel ID, as a compliance view reads it."""

    channel_id: str
    holder: str
    claimant: str
    first_seen: datetime
    last_seen: datetime
    claims: int = 1  # how often the claimant reported the channel since the conflict began


class ChannelRegistry:
    def __init__(self, db: Database, bus: Bus, metrics: Metrics | None = None) -> None:
        self._db = db
        self._bus = bus
        self._metrics = metrics
        self.channels: dict[str, Channel] = {}
        self.conflicts: dict[tuple[str, str], Conflict] = {}  # (channel id, claimant) -> open conflict
        self._owner: dict[str, Adapter] = {}
        self._source: dict[str, str] = {}  # channel id -> device within its adapter ("" for none)
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._flush_wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flusher(), name="registry-flush")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()

    def context(self, adapter: Adapter) -> AdapterView:
        return AdapterView(self, adapter)

    # -- reads ---------------------------------------------------------------------
    def get(self, channel_id: str) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise UnknownChannel(channel_id) from None

    def adapter_for(self, channel_id: str) -> Adapter:
        try:
            return self._owner[channel_id]
        except KeyError:
            raise UnknownChannel(channel_id) from None

    # -- writes from adapters -----------------------------------------------------------
    def seen(self, adapter: Adapter, channel: Channel) -> bool:
        """Record the channel; False (and the conflict flagged) when another source holds its ID."""
        device = str(channel.extra.get("device") or "")
        holder = self._owner.get(channel.id)
        if holder is not None and (holder is not adapter or self._source[channel.id] != device):
            self._conflict(channel.id, _label(holder, self._source[channel.id]), _label(adapter, device))
            return False
        old = self.channels.get(channel.id)
        self.channels[channel.id] = channel
        self._owner[channel.id] = adapter
        self._source[channel.id] = device
        self._removed.discard(channel.id)
        self._mark(channel.id)
        if old is None:
            self._bus.publish(ChannelAdded(channel_id=channel.id, name=channel.name, adapter=channel.adapter))
        if old is None or old.online != channel.online:
            self._bus.publish(ChannelState(channel_id=channel.id, online=channel.online))
        return True

    def _conflict(self, channel_id: str, holder: str, claimant: str) -> None:
        now = datetime.now(UTC)
        known = self.conflicts.get((channel_id, claimant))
        if known is not None:
            known.last_seen, known.claims = now, known.claims + 1
            return
        self.conflicts[(channel_id, claimant)] = Conflict(channel_id, holder, claimant, now, now)
        log.warning("channel %s: claimed by %s while %s holds it; refused", channel_id, claimant, holder)
        if self._metrics is not None:
            self._metrics.inc("vsgw_channel_conflicts_total")
        self._bus.publish(ChannelConflict(channel_id=channel_id, holder=holder, claimant=claimant))

    def removed(self, channel_id: str) -> None:
        if self.channels.pop(channel_id, None) is None:
            return
        self._owner.pop(channel_id, None)
        self._source.pop(channel_id, None)
        for key in [k for k in self.conflicts if k[0] == channel_id]:  # the ID is free: the next claim takes it
            del self.conflicts[key]
        self._removed.add(channel_id)
        self._mark(channel_id)
        self._bus.publish(ChannelRemoved(channel_id=channel_id))

    def state(self, channel_id: str, online: bool, reason: str | None = None) -> None:
        channel = self.channels.get(channel_id)
        if channel is None or channel.online == online:
            return
        channel.online = online
        self._mark(channel_id)
        self._bus.publish(ChannelState(channel_id=channel_id, online=online, reason=reason))

    # -- persistence --------------------------------------------------------------------
    def _mark(self, channel_id: str) -> None:
        self._dirty.add(channel_id)
        self._flush_wanted.set()

    async def _flusher(self) -> None:
        while True:
            await self._flush_wanted.wait()
            await asyncio.sleep(0.2)  # batch bursts (a 10,000-item catalog arrives in a burst)
            try:
                await self.flush()
            except Exception:
                log.exception("registry flush failed; will retry")
                await asyncio.sleep(2)

    async def flush(self) -> None:
        self._flush_wanted.clear()
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        now = datetime.now(UTC)
        try:
            async with self._db.session() as s:
                rows = {r.id: r for r in (await s.scalars(select(ChannelRow).where(ChannelRow.id.in_(dirty))))}
                for cid in dirty:
                    ch = self.channels.get(cid)
                    row = rows.get(cid)
                    if ch is None:
                        if row is not None:
                            row.online = False
                            row.last_seen = now
                        continue
                    if row is None:
                        row = ChannelRow(id=cid, first_seen=now)
                        s.add(row)
                    row.adapter, row.name, row.online, row.ptz = ch.adapter, ch.name, ch.online, ch.ptz
                    row.codec, row.civil_code, row.parent = ch.codec, ch.civil_code, ch.parent
                    row.extra = _jsonable(ch.extra)
                    row.last_seen = now
        except BaseException:
            self._dirty |= dirty
            raise


def _label(adapter: Adapter, device: str) -> str:
    return f"{adapter.kind}/{device}" if device else adapter.kind


def _jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if isinstance(v, (str, int, float, bool, type(None)))}


class AdapterView:
    """The :class:`adapters.base.AdapterContext` one adapter gets."""

    def __init__(self, registry: ChannelRegistry, adapter: Adapter) -> None:
        self._registry = registry
        self._adapter = adapter

    def channel_seen(self, channel: Channel) -> bool:
        return self._registry.seen(self._adapter, channel)

    def channel_removed(self, channel_id: str) -> None:
        self._registry.removed(channel_id)

    def channel_state(self, channel_id: str, online: bool, reason: str | None = None) -> None:
        self._registry.state(channel_id, online, reason)

    def publish(self, event: Event) -> None:
        self._registry._bus.publish(event)
