"""GB/T 28181 devices and their channels in the gateway database, so a restart forgets neither
(R1, R15, R18).

A device row keeps what its last REGISTER established — the transport and source address it is
bound to, its Contact, when the registration ends — with the last keepalive, manufacturer and
model; channel rows keep its catalog. At start the adapter restores them: the channels are listed
again (offline) and the device comes back online at its next keepalive over the stored binding.
A TCP binding cannot outlive the connection, so such a device registers again.

Writes are batched off the signalling path. A keepalive is written at most every
``keepalive_every`` seconds per device: at 20,000 devices a write per keepalive would be 333 a
second for a time that matters to the minute.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from adapters.base import Channel
from gateway.storage import Base, Database, migration
from gateway.storage.migrate import create_tables
from gateway.tasks import cancel_and_wait

from .devices import Device
from .settings import DeviceSettings
from .transport import Peer

log = logging.getLogger(__name__)
KEEPALIVE_EVERY = 300.0
MAX_ID = 64
CHUNK = 500  # ids per IN (…) clause


class GbDeviceRow(Base):
    __tablename__ = "gb28181_devices"

    id: Mapped[str] = mapped_column(String(MAX_ID), primary_key=True)
    transport: Mapped[str] = mapped_column(String(3))
    host: Mapped[str] = mapped_column(String(64))
    port: Mapped[int] = mapped_column(Integer)
    contact: Mapped[str] = mapped_column(String(400))
    gb_version: Mapped[str] = mapped_column(String(8))
    expires: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_keepalive: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    manufacturer: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)


class GbChannelRow(Base):
    __tablename__ = "gb28181_channels"

    id: Mapped[str] = mapped_column(String(MAX_ID), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("gb28181_devices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    ptz: Mapped[bool] = mapped_column(Boolean, default=False)
    codec: Mapped[str | None] = mapped_column(String(16), nullable=True)
    civil_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    parent: Mapped[str | None] = mapped_column(String(MAX_ID), nullable=True)
    manufacturer: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)


class GbSettingsRow(Base):
    """What the HTTP API set for one device; a NULL column falls back to the configuration."""

    __tablename__ = "gb28181_device_settings"

    id: Mapped[str] = mapped_column(ForeignKey("gb28181_devices.id", ondelete="CASCADE"), primary_key=True)
    media_transport: Mapped[str | None] = mapped_column(String(16), nullable=True)
    charset: Mapped[str | None] = mapped_column(String(16), nullable=True)
    keepalive_interval: Mapped[float | None] = mapped_column(Float, nullable=True)
    keepalive_timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)


migration("gb28181", 1, "devices and their channels")(create_tables(GbDeviceRow.__table__, GbChannelRow.__table__))
migration("gb28181", 2, "per-device settings")(create_tables(GbSettingsRow.__table__))


class DeviceStore:
    def __init__(self, db: Database, keepalive_every: float = KEEPALIVE_EVERY) -> None:
        self.db = db
        self.keepalive_every = keepalive_every
        self._dirty: dict[str, Device] = {}
        self._catalogs: set[str] = set()  # devices whose channels changed
        self._saved_keepalive: dict[str, float] = {}
        self._settings: set[str] = set()  # devices whose settings changed
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()  # a flush never writes back a device being deleted
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flusher(), name="gb28181-store")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()

    def record(self, dev: Device, what: str) -> None:
        """Devices' hook: ``what`` is "registration", "keepalive", "channels" or "settings"."""
        if len(dev.id) > MAX_ID:
            return
        if what == "keepalive" and dev.last_keepalive - self._saved_keepalive.get(dev.id, 0.0) < self.keepalive_every:
            return
        self._dirty[dev.id] = dev
        if what == "channels":
            self._catalogs.add(dev.id)
        elif what == "settings":
            self._settings.add(dev.id)
        self._wanted.set()

    async def delete(self, device_id: str) -> None:
        """Forget the device, its channels and its settings, durably (awaited: the caller answers after)."""
        async with self._lock:
            self._dirty.pop(device_id, None)
            self._catalogs.discard(device_id)
            self._settings.discard(device_id)
            self._saved_keepalive.pop(device_id, None)
            async with self.db.session() as s:
                await s.execute(delete(GbSettingsRow).where(GbSettingsRow.id == device_id))
                await s.execute(delete(GbChannelRow).where(GbChannelRow.device_id == device_id))
                await s.execute(delete(GbDeviceRow).where(GbDeviceRow.id == device_id))

    async def load(self, adapter: str) -> list[Device]:
        async with self.db.session() as s:
            rows = list(await s.scalars(select(GbDeviceRow)))
            channels = list(await s.scalars(select(GbChannelRow)))
            settings = list(await s.scalars(select(GbSettingsRow)))
        devices = {r.id: _device(r) for r in rows}
        for r in settings:
            if r.id in devices:
                devices[r.id].settings = DeviceSettings(r.media_transport, r.charset, r.keepalive_interval,
                                                        r.keepalive_timeout, r.time_zone)
        for r in channels:
            dev = devices.get(r.device_id)
            if dev is not None:
                dev.channels[r.id] = Channel(id=r.id, name=r.name, adapter=adapter, online=False, ptz=r.ptz,
                                             codec=r.codec, civil_code=r.civil_code, parent=r.parent,
                                             manufacturer=r.manufacturer, model=r.model, extra=dict(r.extra or {}))
        self._saved_keepalive = {d.id: d.last_keepalive for d in devices.values()}
        return list(devices.values())

    async def _flusher(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(0.5)  # a registration storm or a big catalog arrives in a burst
            try:
                await self.flush()
            except Exception:
                log.exception("GB/T 28181 device store flush failed; will retry")
                await asyncio.sleep(2)

    async def flush(self) -> None:
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        self._wanted.clear()
        dirty, self._dirty = self._dirty, {}
        catalogs, self._catalogs = self._catalogs, set()
        settings, self._settings = self._settings, set()
        if not dirty:
            return
        try:
            async with self.db.session() as s:
                ids = list(dirty)
                for i in range(0, len(ids), CHUNK):
                    await self._write_devices(s, [dirty[d] for d in ids[i:i + CHUNK]])
                await s.flush()  # device rows before the channel and settings rows that refer to them
                for device_id in catalogs:
                    await self._write_channels(s, dirty[device_id])
                for device_id in settings:
                    await self._write_settings(s, dirty[device_id])
        except BaseException:
            self._dirty = dirty | self._dirty
            self._catalogs |= catalogs
            self._settings |= settings
            raise
        for dev in dirty.values():
            self._saved_keepalive[dev.id] = dev.last_keepalive

    async def _write_devices(self, s: Any, devs: list[Device]) -> None:
        rows = {r.id: r for r in await s.scalars(select(GbDeviceRow).where(GbDeviceRow.id.in_([d.id for d in devs])))}
        for dev in devs:
            row = rows.get(dev.id)
            if row is None:
                row = GbDeviceRow(id=dev.id)
                s.add(row)
            row.transport, row.host, row.port = dev.peer.transport, dev.peer.addr[0][:64], dev.peer.addr[1]
            row.contact, row.gb_version, row.expires = dev.contact[:400], dev.gb_version[:8], dev.expires
            row.registered_at, row.expires_at = _when(dev.registered_at), _when(dev.expires_at)
            row.last_keepalive = _when(dev.last_keepalive)
            row.manufacturer = (dev.info.get("manufacturer") or "")[:100] or None
            row.model = (dev.info.get("model") or "")[:100] or None

    async def _write_settings(self, s: Any, dev: Device) -> None:
        row = await s.get(GbSettingsRow, dev.id)
        if dev.settings.empty:
            if row is not None:
                await s.delete(row)
            return
        if row is None:
            row = GbSettingsRow(id=dev.id)
            s.add(row)
        for name, value in dev.settings.to_dict().items():
            setattr(row, name, value)

    async def _write_channels(self, s: Any, dev: Device) -> None:
        wanted = {cid: ch for cid, ch in dev.channels.items() if len(cid) <= MAX_ID}
        await s.execute(delete(GbChannelRow).where(GbChannelRow.device_id == dev.id,
                                                   GbChannelRow.id.not_in(list(wanted))))
        ids = list(wanted)
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i:i + CHUNK]
            rows = {r.id: r for r in await s.scalars(select(GbChannelRow).where(GbChannelRow.id.in_(chunk)))}
            for cid in chunk:
                ch, row = wanted[cid], rows.get(cid)
                if row is None:
                    row = GbChannelRow(id=cid)
                    s.add(row)
                row.device_id, row.name, row.ptz, row.codec = dev.id, ch.name[:200], ch.ptz, ch.codec
                row.civil_code = ch.civil_code[:20] if ch.civil_code else None
                row.parent = ch.parent[:MAX_ID] if ch.parent else None
                row.manufacturer = ch.manufacturer[:100] if ch.manufacturer else None
                row.model = ch.model[:100] if ch.model else None
                row.extra = {k: v for k, v in ch.extra.items() if isinstance(v, (str, int, float, bool, type(None)))}


def _when(ts: float) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _ts(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()  # SQLite drops the zone


def _device(r: GbDeviceRow) -> Device:
    peer = Peer(r.transport, (r.host, r.port))  # a TCP binding's connection is gone: conn 0 matches none
    info = {k: v for k, v in (("manufacturer", r.manufacturer), ("model", r.model)) if v}
    return Device(r.id, peer, contact=r.contact, expires=r.expires, registered_at=_ts(r.registered_at),
                  expires_at=_ts(r.expires_at), last_keepalive=_ts(r.last_keepalive), gb_version=r.gb_version,
                  info=info)
