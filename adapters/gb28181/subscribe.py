"""GB/T 28181 subscriptions: Catalog, Alarm and MobilePosition by SUBSCRIBE, kept alive (R1, R15).

A subscription is a SIP dialog (RFC 6665): ``Event: Catalog`` for the catalog, ``Event:
presence`` for alarms and positions (as WVP and the devices it meets use them), a MANSCDP Query
body saying what to report, and ``Expires``. It is refreshed in its dialog before it runs out; a
device that has forgotten the dialog (481, or no answer) gets a fresh SUBSCRIBE. When the device
comes back online, or registers anew, its subscriptions are made again: a rebooted device keeps
none. NOTIFYs in these dialogs are answered 200: Catalog events (ADD/DEL/UPDATE/ON/OFF…) and
alarms take the adapter's own path into the registry and the bus; positions, whether they arrive
by NOTIFY or by MESSAGE, are published as :class:`~gateway.bus.MobilePosition`. A NOTIFY saying
``Subscription-State: terminated`` makes the subscription again unless it was cancelled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.bus import Event, MobilePosition

from . import manscdp
from .devices import Device
from .manscdp import Manscdp, XmlError
from .server import DeviceRefused
from .sip import SipMessage, new_call_id, param, response, uri_user
from .transport import Peer

if TYPE_CHECKING:
    from .adapter import GbAdapter

log = logging.getLogger(__name__)
# name in the API -> (Event header, CmdType of the Query body)
KINDS = {"catalog": ("Catalog", "Catalog"), "alarm": ("presence", "Alarm"),
         "mobileposition": ("presence", "MobilePosition")}
EXPIRES_MIN, EXPIRES_MAX = 1, 86400
RETRY_MAX = 60.0
ERRORS = (TimeoutError, ConnectionError, OSError, DeviceRefused)


def refresh_after(expires: float) -> float:
    """Seconds until the refresh: a tenth of the period (at least 5 s) early, never under 0.5 s."""
    return max(0.5, expires - max(5.0, expires * 0.1)) if expires > 1 else 0.5


@dataclass(slots=True)
class Subscription:
    device_id: str
    kind: str  # a key of KINDS
    expires: int
    body: list[tuple[str, object]] = field(default_factory=list)  # the Query's fields after DeviceID
    call_id: str = ""
    to_tag: str = ""
    cseq: int = 0
    state: str = "pending"  # pending | active | suspended | failed | cancelled
    status: int = 0  # the device's last answer
    expires_at: float = 0.0
    refreshes: int = 0
    notifies: int = 0
    reason: str = ""
    task: asyncio.Task | None = None

    def json(self) -> dict[str, Any]:
        return {"device": self.device_id, "event": self.kind, "state": self.state, "expires": self.expires,
                "expires_at": self.expires_at or None, "status": self.status or None, "refreshes": self.refreshes,
                "notifies": self.notifies, "reason": self.reason or None}


class Subscriptions:
    """Every subscription the gateway holds, by (device, kind)."""

    def __init__(self, adapter: GbAdapter, publish: Callable[[Event], None]) -> None:
        self.adapter = adapter
        self.server = adapter.server
        self.metrics = adapter.metrics
        self.publish = publish
        self.subs: dict[tuple[str, str], Subscription] = {}
        self._by_call: dict[str, Subscription] = {}
        self._tasks: set[asyncio.Task] = set()
        self._notify_next = self.server.on_request.get("NOTIFY")
        self.server.on_request["NOTIFY"] = self._notify
        self.server.on_message.append(self._message)
        devices = self.server.devices
        self._changed_next, devices.on_change = devices.on_change, self._changed
        self._record_next, devices.on_record = devices.on_record, self._recorded

    # -- the API ----------------------------------------------------------------------------
    def of(self, device_id: str) -> list[Subscription]:
        return [s for (dev, _), s in sorted(self.subs.items()) if dev == device_id]

    async def subscribe(self, device_id: str, kind: str, expires: int,
                        body: list[tuple[str, object]] | None = None) -> Subscription:
        """Subscribe (replacing a subscription of that kind); DeviceRefused/TimeoutError if the
        device does not take it, and then nothing is kept."""
        dev = self._device(device_id)
        old = self.subs.pop((device_id, kind), None)
        if old is not None:
            await self._end(old)
        sub = Subscription(device_id, kind, expires, list(body or []))
        try:
            await self._establish(dev, sub)
        except BaseException:
            self._forget(sub)
            raise
        self.subs[(device_id, kind)] = sub
        self._schedule(sub, refresh_after(sub.expires))
        return sub

    async def unsubscribe(self, device_id: str, kind: str) -> Subscription | None:
        sub = self.subs.pop((device_id, kind), None)
        if sub is not None:
            await self._end(sub)
        return sub

    async def stop(self) -> None:
        """Cancel everything; tell online devices, within a couple of seconds."""
        subs = list(self.subs.values())
        self.subs.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if subs:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.gather(*(self._end(s) for s in subs), return_exceptions=True)

    # -- the dialog ---------------------------------------------------------------------------
    def _device(self, device_id: str) -> Device:
        dev = self.server.devices.get(device_id)
        if dev is None:
            raise LookupError(f"no GB/T 28181 device {device_id!r}")
        if not dev.online:
            raise ConnectionError(f"device {device_id} is offline")
        return dev

    def _request(self, dev: Device, sub: Subscription, expires: int) -> SipMessage:
        event, cmd = KINDS[sub.kind]
        sn = self.server.next_sn()
        body = manscdp.build("Query", cmd, sn, dev.id, sub.body)
        sub.cseq += 1
        req = self.server.new_request("SUBSCRIBE", dev, dev.id, body, manscdp.CONTENT_TYPE, call_id=sub.call_id,
                                      to_tag=sub.to_tag or None, cseq=sub.cseq)
        req.add("Event", f"{event};id={sn}")
        req.add("Expires", str(expires))
        req.add("Contact", f"<sip:{self.adapter.cfg.server_id}@{self.server.endpoint.host}:{self.server.port}>")
        return req

    async def _establish(self, dev: Device, sub: Subscription) -> None:
        """A fresh SUBSCRIBE: a new dialog."""
        self._forget(sub)
        sub.call_id, sub.to_tag, sub.cseq = new_call_id(self.server.endpoint.host), "", 0
        self._by_call[sub.call_id] = sub
        await self._send(dev, sub, sub.expires)

    async def _send(self, dev: Device, sub: Subscription, expires: int) -> None:
        try:
            resp = await self.server.endpoint.request(self._request(dev, sub, expires), dev.peer)
        except ERRORS as exc:
            self._count(sub, "timeout" if isinstance(exc, TimeoutError) else "failed")
            sub.status, sub.reason = 0, type(exc).__name__
            raise
        sub.status = resp.status or 0
        if sub.status >= 300 or sub.status < 200:
            self._count(sub, str(sub.status))
            sub.reason = resp.reason
            raise DeviceRefused(sub.status, resp.reason)
        sub.to_tag = sub.to_tag or param((resp.get("to") or "").rpartition(">")[2], "tag") or ""
        granted = (resp.get("expires") or "").strip()
        sub.expires = int(granted) if granted.isdigit() and 0 < int(granted) <= sub.expires else sub.expires
        sub.expires_at = time.time() + sub.expires
        sub.state, sub.reason = "active", ""
        self._count(sub, "ok")

    async def _refresh(self, sub: Subscription) -> None:
        """Refresh in the dialog; a device that no longer knows it gets a new one."""
        dev = self._device(sub.device_id)
        try:
            await self._send(dev, sub, sub.expires)
        except (TimeoutError, DeviceRefused) as exc:
            log.info("subscription %s/%s refresh failed (%s): subscribing anew", sub.device_id, sub.kind,
                     getattr(exc, "status", type(exc).__name__))
            await self._establish(dev, sub)
        sub.refreshes += 1

    async def _end(self, sub: Subscription) -> None:
        """Expires 0 in the dialog (best effort: an offline device or a lost dialog is fine)."""
        if sub.task is not None:
            sub.task.cancel()
        sub.state = "cancelled"
        dev = self.server.devices.get(sub.device_id)
        if sub.to_tag and dev is not None and dev.online:
            try:
                resp = await self.server.endpoint.request(self._request(dev, sub, 0), dev.peer)
                sub.status = resp.status or 0
            except ERRORS:
                sub.status = 0
        self._forget(sub)
        self._count(sub, "cancelled")

    def _forget(self, sub: Subscription) -> None:
        if self._by_call.get(sub.call_id) is sub:
            del self._by_call[sub.call_id]

    def _count(self, sub: Subscription, result: str) -> None:
        self.metrics.inc("vsgw_gb28181_subscribe_total", event=sub.kind, result=result)

    # -- keeping it alive ---------------------------------------------------------------------
    def _schedule(self, sub: Subscription, delay: float, fresh: bool = False) -> None:
        if sub.task is not None:
            sub.task.cancel()
        task = asyncio.get_running_loop().create_task(self._keep(sub, delay, fresh))
        sub.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep(self, sub: Subscription, delay: float, fresh: bool) -> None:
        retry = 1.0
        while self.subs.get((sub.device_id, sub.kind)) is sub:
            await asyncio.sleep(delay)
            try:
                if fresh:
                    await self._establish(self._device(sub.device_id), sub)
                else:
                    await self._refresh(sub)
            except ERRORS as exc:
                sub.state = "failed"
                sub.reason = sub.reason or type(exc).__name__
                delay, retry, fresh = retry, min(retry * 2, RETRY_MAX), True
                continue
            except LookupError:
                return
            delay, retry, fresh = refresh_after(sub.expires), 1.0, False

    def _changed(self, dev: Device, online: bool, reason: str) -> None:
        self._changed_next(dev, online, reason)
        for sub in self.of(dev.id):
            if online:
                sub.state = "pending"
                self._schedule(sub, 0.0, fresh=True)
            else:
                sub.state, sub.reason = "suspended", reason
                if sub.task is not None:
                    sub.task.cancel()

    def _recorded(self, dev: Device, what: str) -> None:
        """A REGISTER while online (a refresh, or a reboot the gateway did not see): refresh the
        subscriptions, which falls back to new ones if the device lost them."""
        self._record_next(dev, what)
        if what != "registration" or not dev.online or not dev.registered:
            return
        for sub in self.of(dev.id):
            if sub.state == "active":
                self._schedule(sub, 0.0)

    # -- what the device sends ------------------------------------------------------------------
    async def _notify(self, req: SipMessage, peer: Peer) -> None:
        sub = self._by_call.get(req.call_id)
        if sub is not None:
            sub.notifies += 1
            self.metrics.inc("vsgw_gb28181_notify_total", event=sub.kind)
        dev = self.server.devices.identify(uri_user(req.get("from") or ""))  # the server checked its transport
        try:
            msg = manscdp.parse(req.body, dev.charset if dev else None) if req.body.strip() else None
        except XmlError:
            msg = None  # the adapter's handler answers 400 and counts it
        if msg is not None and msg.cmd.lower() == "mobileposition":
            self.server.endpoint.reply(req, response(req, 200, source=peer.addr), peer)
            if dev is not None:
                self._position(dev, msg)
        elif msg is None and not req.body.strip():
            self.server.endpoint.reply(req, response(req, 200, source=peer.addr), peer)
        elif self._notify_next is not None:
            result = self._notify_next(req, peer)
            if asyncio.iscoroutine(result):
                await result
        state = (req.get("subscription-state") or "").split(";", 1)[0].strip().lower()
        if sub is not None and state == "terminated" and self.subs.get((sub.device_id, sub.kind)) is sub:
            sub.state, sub.reason = "pending", "terminated by the device"
            self._schedule(sub, 1.0, fresh=True)

    def _message(self, dev: Device, msg: Manscdp) -> None:
        """Positions sent by MESSAGE (many devices do so rather than NOTIFY)."""
        if msg.kind == "notify" and msg.cmd.lower() == "mobileposition":
            self._position(dev, msg)

    def _position(self, dev: Device, msg: Manscdp) -> None:
        root = msg.root
        try:
            lon, lat = float(root.get("longitude")), float(root.get("latitude"))
        except ValueError:
            self.metrics.inc("vsgw_gb28181_rejected_total", reason="bad_position")
            return
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            self.metrics.inc("vsgw_gb28181_rejected_total", reason="bad_position")
            return
        self.metrics.inc("vsgw_gb28181_positions_total")
        self.publish(MobilePosition(channel_id=msg.device_id, longitude=lon, latitude=lat, device=dev.id,
                                    reported_at=root.get("time"), speed=_number(root.get("speed")),
                                    direction=_number(root.get("direction")), altitude=_number(root.get("altitude"))))


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
