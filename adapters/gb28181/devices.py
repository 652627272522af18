"""Registered devices, the transport each is bound to, and their liveness (R1, R15, R18).

A successful REGISTER binds a device to the transport it came over: its UDP source address and
port, or its own TCP connection. Only that binding may speak for the device (or for its
channels) until the next authenticated REGISTER; a keepalive never moves it. A device is online
while registered and keeping alive (WVP's rule: offline at the earlier of the registration's end
and ``misses`` silent keepalive intervals); a keepalive (or any request) over its binding within
the registration brings it back, which is how devices return after a gateway restart without
re-registering.
Losing a TCP connection ends its registration (GB/T 28181-2022). Going offline takes the
channels offline too. Times are wall-clock seconds, so they mean the same after a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.base import Channel

from .settings import DeviceSettings, Effective
from .transport import Peer


@dataclass(slots=True)
class Device:
    id: str
    peer: Peer
    contact: str = ""
    expires: int = 3600  # what the last REGISTER was granted
    registered_at: float = 0.0
    expires_at: float = 0.0  # the registration ends (0: unregistered)
    last_keepalive: float = 0.0  # the last REGISTER or keepalive
    online: bool = False
    gb_version: str = ""
    charset: str | None = None  # resolved from the settings layers (:meth:`Devices.configure`)
    keepalive_timeout: float = 0.0  # likewise; 0: the server's interval × misses
    channels: dict[str, Channel] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    settings: DeviceSettings = field(default_factory=DeviceSettings)  # what the HTTP API set for it

    @property
    def registered(self) -> bool:
        return time.time() < self.expires_at


Record = Callable[[Device, str], None]  # (device, "registration" | "keepalive" | "channels")


class Devices:
    """Device table, binding and channel-owner indexes, and a sweeper that marks silent devices offline."""

    def __init__(self, keepalive_interval: float, misses: int,
                 on_change: Callable[[Device, bool, str], None]) -> None:
        self.interval = keepalive_interval
        self.misses = misses
        self.on_change = on_change
        self.on_record: Record = lambda dev, what: None  # persistence (the adapter's store)
        self.by_id: dict[str, Device] = {}
        self.by_peer: dict[Peer, str] = {}  # binding -> the device that registered over it last
        self.owner: dict[str, str] = {}  # channel id -> device id
        self.shortest = keepalive_interval  # the shortest keepalive interval any device has: the sweep's pace
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def get(self, device_id: str) -> Device | None:
        return self.by_id.get(device_id)

    def identify(self, sip_user: str) -> Device | None:
        """The device a From user names: a device ID, or a channel ID of one (Hikvision sends a
        playback's MediaStatus from the channel)."""
        return self.by_id.get(sip_user) or self.by_id.get(self.owner.get(sip_user, ""))

    def bound_to(self, peer: Peer) -> Device | None:
        dev = self.by_id.get(self.by_peer.get(peer, ""))
        return dev if dev is not None and dev.peer == peer else None

    # -- registration ------------------------------------------------------------------------
    def registered(self, device_id: str, peer: Peer, contact: str, expires: int, gb_version: str) -> Device:
        now = time.time()
        dev = self.by_id.get(device_id)
        if dev is None:
            dev = self.by_id[device_id] = Device(device_id, peer)
        self._bind(dev, peer)
        dev.contact, dev.expires, dev.gb_version = contact, expires, gb_version
        dev.registered_at = dev.last_keepalive = now
        dev.expires_at = now + expires
        self._set(dev, True, "registered")
        self.on_record(dev, "registration")
        return dev

    def unregistered(self, device_id: str) -> None:
        dev = self.by_id.get(device_id)
        if dev is not None:
            self._end(dev, "unregistered")

    def restore(self, dev: Device) -> None:
        """A device from the store, offline until it speaks over its binding. A TCP binding was its
        connection, gone with the restart: such a device registers again."""
        dev.online = False
        if dev.peer.transport == "tcp":
            dev.expires_at = 0.0
        self.by_id[dev.id] = dev
        self._bind(dev, dev.peer)
        for cid in dev.channels:
            self.owner[cid] = dev.id

    def configure(self, dev: Device, eff: Effective) -> None:
        """Apply the device's resolved settings: how its bodies decode, when its silence means offline."""
        dev.charset = eff.charset
        dev.keepalive_timeout = eff.keepalive_timeout
        if eff.keepalive_interval < self.shortest:
            self.shortest = eff.keepalive_interval
            if self._task is not None:  # a sweep may be asleep for the old, longer step: restart at the new pace
                self._task.cancel()
                self.start()

    def seen(self, dev: Device, how: str) -> None:
        """A keepalive (or another request) from a registered device over its binding — the caller
        checked both — shows it alive."""
        dev.last_keepalive = time.time()
        self._set(dev, True, how)
        self.on_record(dev, "keepalive")

    def connection_closed(self, peer: Peer) -> None:
        dev = self.bound_to(peer)
        if dev is not None:
            self._end(dev, "connection closed")

    def forget(self, device_id: str) -> None:
        """Drop all state (as after a restart that lost it)."""
        dev = self.by_id.pop(device_id, None)
        if dev is None:
            return
        if self.by_peer.get(dev.peer) == device_id:
            del self.by_peer[dev.peer]
        for cid in dev.channels:
            if self.owner.get(cid) == device_id:
                del self.owner[cid]
        if dev.online:
            dev.online = False
            self.on_change(dev, False, "forgotten")

    def deadline(self, dev: Device) -> float:
        return min(dev.expires_at, dev.last_keepalive + (dev.keepalive_timeout or self.interval * self.misses))

    def _bind(self, dev: Device, peer: Peer) -> None:
        if self.by_peer.get(dev.peer) == dev.id:
            del self.by_peer[dev.peer]
        dev.peer = peer
        self.by_peer[peer] = dev.id

    def _end(self, dev: Device, reason: str) -> None:
        dev.expires_at = 0.0
        self._set(dev, False, reason)
        self.on_record(dev, "registration")

    def _set(self, dev: Device, online: bool, reason: str) -> None:
        if dev.online != online:
            dev.online = online
            self.on_change(dev, online, reason)

    async def _sweep(self) -> None:
        while True:  # 20,000 devices: ~20 ms per pass
            await asyncio.sleep(max(0.05, min(5.0, self.shortest / 4)))
            now = time.time()
            for dev in list(self.by_id.values()):
                if dev.online and now >= self.deadline(dev):
                    expired = now >= dev.expires_at
                    self._set(dev, False, "registration expired" if expired else "keepalive timeout")
