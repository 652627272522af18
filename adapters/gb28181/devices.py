"""Registered devices and their liveness: registration expiry and missed keepalives (R1, R15).

A device is online from a successful REGISTER until it unregisters, its registration expires, or
``misses`` keepalive intervals pass without a keepalive (WVP's rule: min of the two). Going
offline takes its channels offline too (a common complaint: channels stay "online" after the
device is gone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.base import Channel

from .transport import Peer


@dataclass(slots=True)
class Device:
    id: str
    peer: Peer
    contact: str = ""
    expires: int = 3600
    registered_at: float = 0.0  # loop time
    last_seen: float = 0.0  # loop time of the last REGISTER or keepalive
    online: bool = False
    gb_version: str = ""
    charset: str | None = None
    channels: dict[str, Channel] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    registered_wall: float = field(default_factory=time.time)


class Devices:
    """Device table plus a sweeper task that marks silent devices offline."""

    def __init__(self, keepalive_interval: float, misses: int,
                 on_change: Callable[[Device, bool, str], None]) -> None:
        self.interval = keepalive_interval
        self.misses = misses
        self.on_change = on_change
        self.by_id: dict[str, Device] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def get(self, device_id: str) -> Device | None:
        return self.by_id.get(device_id)

    def registered(self, device_id: str, peer: Peer, contact: str, expires: int, gb_version: str) -> Device:
        now = asyncio.get_running_loop().time()
        dev = self.by_id.get(device_id)
        if dev is None:
            dev = self.by_id[device_id] = Device(device_id, peer)
        dev.peer, dev.contact, dev.expires, dev.gb_version = peer, contact, expires, gb_version
        dev.registered_at = dev.last_seen = now
        dev.registered_wall = time.time()
        self._set(dev, True, "registered")
        return dev

    def unregistered(self, device_id: str) -> None:
        dev = self.by_id.get(device_id)
        if dev is not None:
            self._set(dev, False, "unregistered")

    def keepalive(self, device_id: str, peer: Peer) -> Device | None:
        """Record a keepalive; None when the device is unknown or its registration lapsed."""
        dev = self.by_id.get(device_id)
        if dev is None or not dev.online:
            return None
        dev.last_seen = asyncio.get_running_loop().time()
        dev.peer = peer
        return dev

    def deadline(self, dev: Device) -> float:
        return min(dev.registered_at + dev.expires, dev.last_seen + self.interval * self.misses)

    def forget(self, device_id: str) -> None:
        """Drop all state (as after a restart)."""
        dev = self.by_id.pop(device_id, None)
        if dev is not None and dev.online:
            dev.online = False
            self.on_change(dev, False, "forgotten")

    def _set(self, dev: Device, online: bool, reason: str) -> None:
        if dev.online != online:
            dev.online = online
            self.on_change(dev, online, reason)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        step = max(0.05, min(5.0, self.interval / 4))  # 20,000 devices: ~20 ms per pass
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            for dev in list(self.by_id.values()):
                if dev.online and now >= self.deadline(dev):
                    expired = now >= dev.registered_at + dev.expires
                    self._set(dev, False, "registration expired" if expired else "keepalive timeout")
