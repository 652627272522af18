"""The GB/T 28181 adapter: devices register to our SIP server; their channels land in the registry;
live/playback media is INVITEd on demand and BYE'd when the hub stops the stream (R1, R15)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from adapters.base import Adapter, Channel, NotSupported, PtzCommand, RecordRange
from gateway.bus import Alarm
from gateway.media import AccessUnit
from gateway.policy import PLAYBACK, Action, Decision, InternalAccess, require
from gateway.storage import Database

from . import ptz as ptzcodec
from .catalog import NO_PTZ, TreeNode, channel_from_item, is_streamable, tree_node
from .config import SipConfig
from .devices import Device
from .devtime import from_device, to_device
from .dialog import Invite, Player
from .manscdp import Manscdp
from .playback import DevicePlayback
from .results import CatalogResult, DeviceRecord, RecordSearch, query_failure
from .server import DeviceRefused, GbServer
from .sip import SipMessage, response, uri_user
from .store import DeviceStore
from .transport import Peer

log = logging.getLogger(__name__)
CATALOG_EVENTS_OFF = ("OFF", "VLOST", "DEFECT")
QUERY_ERRORS = (TimeoutError, ConnectionError, OSError, DeviceRefused)
EXPORTING = frozenset({Action.EXPORT})


class GbAdapter(Adapter):
    kind = "gb28181"

    def __init__(self, cfg: SipConfig, metrics: Any, db: Database | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.metrics = metrics
        self.server = GbServer(cfg, metrics, self._device_changed)
        self.store = DeviceStore(db) if db is not None else None  # registrations and catalogs survive a restart
        if self.store is not None:
            self.server.devices.on_record = self.store.record
        self.server.on_message.append(self._notified)
        self.server.on_request.update({"NOTIFY": self._notify, "BYE": self._bye, "INFO": self._info})
        self.player = Player(self.server, cfg, metrics)
        self._owner = self.server.devices.owner  # channel id -> device id; the server checks senders by it
        self._trees: dict[str, dict[str, TreeNode]] = {}  # device id -> every catalog item it reported
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, ctx) -> None:
        await super().start(ctx)
        if self.store is not None:
            for dev in await self.store.load(self.kind):
                self.server.devices.restore(dev)
                self.server.devices.configure(dev, self.server.settings(dev.id))
                for ch in dev.channels.values():  # listed again at once, online at the device's next keepalive
                    ctx.channel_seen(ch)
            self.store.start()
        await self.server.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.player.close()
        await self.server.stop()
        if self.store is not None:
            await self.store.stop()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- channels -------------------------------------------------------------------------
    def channels(self) -> list[Channel]:
        return [ch for dev in self.server.devices.by_id.values() for ch in dev.channels.values()]

    def tree(self, device_id: str) -> list[TreeNode]:
        """Everything the device's catalog holds — regions, business groups, virtual organisations,
        alarm inputs/outputs, cameras — with its kind and parent, in the order it arrived."""
        return list(self._trees.get(device_id, {}).values())

    def owns(self, channel_id: str) -> bool:
        return channel_id in self._owner

    def device_of(self, channel_id: str) -> Device:
        dev = self.server.devices.get(self._owner.get(channel_id, ""))
        if dev is None:
            raise NotSupported(f"no GB/T 28181 device for {channel_id!r}")
        if not dev.online:
            raise ConnectionError(f"device {dev.id} is offline")
        return dev

    def _device_changed(self, dev: Device, online: bool, reason: str) -> None:
        if reason not in ("registered", "unregistered"):  # those have the REGISTER's own line
            log.info("GB device %s %s: %s", dev.id, "online" if online else "offline", reason)
        self.metrics.inc("vsgw_gb28181_device_state_total", state="online" if online else "offline", reason=reason)
        if online:
            self._spawn(self.refresh_catalog(dev.id))
        for ch in dev.channels.values():
            if self.ctx is not None:
                self.ctx.channel_state(ch.id, online and ch.extra.get("status_on", True), reason)
            ch.online = online and ch.extra.get("status_on", True)

    async def refresh_catalog(self, device_id: str) -> int:
        """Query DeviceInfo and the catalog at once; returns how many items the catalog answer had."""
        return (await self.sync_catalog(device_id)).items

    async def sync_catalog(self, device_id: str, prune: bool = False) -> CatalogResult:
        """DeviceInfo and Catalog queried at once; with ``prune``, a complete answer also removes the
        channels the device no longer reports. One INFO line says how it went.

        Answers are matched by (DeviceID, CmdType, SN), so a device that answers one query late,
        or with the other command's body, never holds the other query up."""
        dev = self.server.devices.get(device_id)
        if dev is None:
            return CatalogResult(error="unknown device")
        info, answer = await asyncio.gather(self.server.query(dev, "DeviceInfo", timeout=self.cfg.request_timeout),
                                            self.server.query(dev, "Catalog"), return_exceptions=True)
        if isinstance(info, BaseException):
            self.metrics.inc("vsgw_gb28181_deviceinfo_total", result="failed")
        else:
            self.metrics.inc("vsgw_gb28181_deviceinfo_total", result="ok" if info.complete else "timeout")
            if info.first is not None:
                dev.info = {c.tag: c.text for c in info.first.root.children if not c.children}
        if isinstance(answer, BaseException):
            self.metrics.inc("vsgw_gb28181_catalog_total", result="failed")
            reason = query_failure(answer)
            log.info("GB catalog %s failed: %s", device_id, reason)
            if not isinstance(answer, QUERY_ERRORS):
                raise answer
            return CatalogResult(error=reason)
        self.metrics.inc("vsgw_gb28181_catalog_total", result="complete" if answer.complete else "partial")
        if not answer.packets:
            log.info("GB catalog %s failed: no answer within %g s", device_id, self.cfg.catalog_timeout)
            return CatalogResult(error=f"no answer within {self.cfg.catalog_timeout:g} s")
        before = set(dev.channels)
        for item in answer.items.values():
            self._upsert(dev, item)
        gone = sorted(before - set(answer.items)) if prune and answer.complete else []
        for cid in gone:
            self._remove(dev, cid)
        result = CatalogResult(items=len(answer.items), sum_num=answer.total, packets=answer.packets,
                               complete=answer.complete, channels=len(dev.channels),
                               added=len(set(dev.channels) - before), removed=len(gone),
                               conflicts=sum(1 for n in self.tree(device_id) if n.extra.get("conflict")))
        log.info("GB catalog %s %s: %d of SumNum %s items in %d packets, %d channels (+%d -%d), %d conflicts",
                 device_id, "complete" if answer.complete else "partial (timed out)", result.items,
                 answer.total, answer.packets, result.channels, result.added, result.removed, result.conflicts)
        return result

    def _upsert(self, dev: Device, item) -> None:
        node = tree_node(item, dev.id)
        if not node.id or self.server.devices.get(dev.id) is not dev:  # empty, or the device was deleted
            return
        self._trees.setdefault(dev.id, {})[node.id] = node
        if not is_streamable(item):
            return
        ch = channel_from_item(item, dev.id, self.kind)
        ch.extra["status_on"] = ch.online
        ch.online = ch.online and dev.online
        claimed = self.ctx.channel_seen(ch) if self.ctx is not None else self._owner.get(ch.id, dev.id) == dev.id
        if not claimed:  # another device (or adapter) holds this ID; the registry flagged the conflict
            node.extra["conflict"] = True
            return
        dev.channels[ch.id] = ch
        self._owner[ch.id] = dev.id
        self.server.devices.on_record(dev, "channels")

    def _remove(self, dev: Device, channel_id: str) -> None:
        self._trees.get(dev.id, {}).pop(channel_id, None)
        if dev.channels.pop(channel_id, None) is not None:
            self._owner.pop(channel_id, None)
            self.server.devices.on_record(dev, "channels")
            if self.ctx is not None:
                self.ctx.channel_removed(channel_id)

    def forget_tree(self, device_id: str, channel_ids: list[str]) -> None:
        """A deleted device's catalog leaves the tree and its channels leave the registry."""
        self._trees.pop(device_id, None)
        for cid in channel_ids:  # the owner index went with the device (Devices.forget)
            if self.ctx is not None:
                self.ctx.channel_removed(cid)

    # -- notifications ------------------------------------------------------------------------
    def _notified(self, dev: Device, msg: Manscdp) -> None:
        cmd = msg.cmd.lower()
        if cmd == "alarm" and msg.kind == "notify":  # a Response/Alarm answers a query, it raises nothing
            self.metrics.inc("vsgw_gb28181_alarms_total")
            if self.ctx is not None:
                self.ctx.publish(Alarm(
                    channel_id=msg.device_id, kind=msg.root.get("info/alarmtype") or msg.root.get("alarmmethod"),
                    priority=msg.root.int("alarmpriority", 4), description=msg.root.get("alarmdescription"),
                    extra={"device": dev.id, "method": msg.root.get("alarmmethod"), "time": msg.root.get("alarmtime"),
                           "longitude": msg.root.get("longitude"), "latitude": msg.root.get("latitude")}))
            self._spawn(self._ack_alarm(dev, msg))
        elif cmd == "mediastatus" and msg.root.get("notifytype") == "121":
            self.player.end_of_file(msg.device_id)
        elif cmd == "catalog":
            self._catalog_events(dev, msg)

    async def _ack_alarm(self, dev: Device, msg: Manscdp) -> None:
        try:
            await self.server.send_manscdp(dev, "Response", "Alarm", msg.device_id, msg.sn, [("Result", "OK")])
        except Exception:  # noqa: BLE001 - best effort: many devices ignore the answer
            self.metrics.inc("vsgw_gb28181_rejected_total", reason="alarm_ack_failed")

    def _catalog_events(self, dev: Device, msg: Manscdp) -> None:
        lst = msg.root.find("devicelist")
        for item in lst.findall("item") if lst is not None else []:
            event = item.get("event").upper()
            cid = item.get("deviceid")
            if event == "DEL":
                self._remove(dev, cid)
            elif event in ("ON", *CATALOG_EVENTS_OFF) and cid in dev.channels:
                on = event == "ON"
                dev.channels[cid].extra["status_on"] = on
                if self.ctx is not None:  # before the flag: the registry holds this Channel and publishes a change
                    self.ctx.channel_state(cid, on and dev.online, event.lower())
                dev.channels[cid].online = on and dev.online
            else:  # ADD, UPDATE, or a plain catalog push
                self._upsert(dev, item)

    async def _notify(self, req: SipMessage, peer: Peer) -> None:
        """Subscription NOTIFY (Catalog events) arrive as their own SIP method."""
        from . import manscdp
        from .manscdp import XmlError

        dev = self.server.devices.identify(uri_user(req.get("from") or ""))  # the server checked its transport
        try:
            msg = manscdp.parse(req.body, dev.charset if dev else None)
        except XmlError as exc:
            self.metrics.inc("vsgw_gb28181_rejected_total", reason=f"xml_{exc.reason}")
            self.server.endpoint.reply(req, response(req, 400, source=peer.addr), peer)
            return
        for fix in msg.repaired:
            self.metrics.inc("vsgw_gb28181_xml_repaired_total", fix=fix)
        self.server.endpoint.reply(req, response(req, 200, source=peer.addr), peer)
        if dev is not None:
            self._notified(dev, msg)

    async def _bye(self, req: SipMessage, peer: Peer) -> None:
        found = self.player.remote_bye(req.call_id)
        self.server.endpoint.reply(req, response(req, 200 if found else 481, source=peer.addr), peer)

    async def _info(self, req: SipMessage, peer: Peer) -> None:
        self.server.endpoint.reply(req, response(req, 200, source=peer.addr), peer)

    async def subscribe_catalog(self, device_id: str, expires: int = 3600) -> int:
        """Catalog SUBSCRIBE; the device then NOTIFYs ADD/DEL/UPDATE/ON/OFF. Returns the SIP status."""
        dev = self.server.devices.get(device_id)
        if dev is None:
            raise NotSupported(f"unknown device {device_id}")
        from . import manscdp

        body = manscdp.build("Query", "Catalog", self.server.next_sn(), device_id)
        req = self.server.new_request("SUBSCRIBE", dev, device_id, body, manscdp.CONTENT_TYPE)
        req.add("Event", "Catalog;id=1")
        req.add("Expires", str(expires))
        req.add("Contact", f"<sip:{self.cfg.server_id}@{self.server.endpoint.host}:{self.server.port}>")
        resp = await self.server.endpoint.request(req, dev.peer)
        return resp.status or 0

    # -- media ----------------------------------------------------------------------------
    async def open(self, channel_id: str, substream: int = 0) -> AsyncIterator[AccessUnit]:
        dev = self.device_of(channel_id)
        async for unit in self.player.live(dev, channel_id, substream):
            yield unit

    def open_playback(self, access: Decision | InternalAccess, channel_id: str, start: datetime,
                      end: datetime, speed: float = 1.0) -> DevicePlayback:
        """INVITE Playback of the device's recording of [start, end] under the gate's VIEW_PLAYBACK
        decision for that range; the returned iterator takes MANSRTSP control (pause, seek, speed)."""
        require(access, channel_id, PLAYBACK, (start, end))
        return self.player.playback(self.device_of(channel_id), channel_id, start, end, speed)

    def open_download(self, access: Decision | InternalAccess, channel_id: str, start: datetime,
                      end: datetime, speed: int | None = None) -> DevicePlayback:
        """INVITE Download of [start, end] at ``speed`` (``download_speed`` by default) under the
        gate's EXPORT decision for that range: a copy, so never under a viewing decision."""
        require(access, channel_id, EXPORTING, (start, end))
        return self.player.download(self.device_of(channel_id), channel_id, start, end,
                                    speed or self.cfg.download_speed)

    async def playback_control(self, channel_id: str, *, scale: float | None = None, seek: float | None = None,
                               pause: bool = False) -> None:
        """MANSRTSP in INFO on the channel's latest playback dialog: PLAY Scale/Range, or PAUSE."""
        await self.player.control(channel_id, scale=scale, seek=seek, pause=pause)

    async def query_records(self, channel_id: str, start: datetime, end: datetime) -> list[RecordRange]:
        """RecordInfo over [start, end) (aware, or naive UTC); the ranges come back in aware UTC."""
        found = await self.record_info(channel_id, start, end)
        return [RecordRange(channel_id, r.start, r.end) for r in found.records]

    async def record_info(self, channel_id: str, start: datetime, end: datetime, kind: str = "all") -> RecordSearch:
        """The device's recordings of one channel by time range and type (all | time | alarm | manual),
        asked and answered in the device's local time, returned in aware UTC and sorted. Items of
        another type are dropped here too: some devices ignore the Type they are asked for."""
        dev = self.device_of(channel_id)
        zone = self.server.settings(dev.id).zone
        fields: list[tuple[str, object]] = [("StartTime", to_device(start, zone)), ("EndTime", to_device(end, zone)),
                                            ("Secrecy", 0), ("Type", kind)]
        answer = await self.server.query(dev, "RecordInfo", channel_id, fields)
        out = []
        for item in answer.items.values():
            try:
                record = DeviceRecord(from_device(item.get("starttime"), zone), from_device(item.get("endtime"), zone),
                                      item.get("type").lower() or None, item.get("name") or None,
                                      item.get("filepath") or None, item.int("filesize", -1))
            except ValueError:
                self.metrics.inc("vsgw_gb28181_rejected_total", reason="bad_record_time")
                continue
            if kind == "all" or record.type in (None, kind):
                out.append(record)
        return RecordSearch(sorted(out, key=lambda r: r.start), answer.complete, answer.total, answer.packets)

    async def ptz(self, channel_id: str, command: PtzCommand) -> None:
        """Refused here only for a camera the catalog declares fixed (PTZType 3); a channel without
        PTZType gets the command and the device answers for itself."""
        dev = self.device_of(channel_id)
        ch = dev.channels.get(channel_id)
        if ch is not None and ch.extra.get("ptz_type") in NO_PTZ:
            self.metrics.inc("vsgw_gb28181_ptz_refused_total", by="catalog")
            raise NotSupported(f"channel {channel_id} is a fixed camera (PTZType 3)")
        code = ptzcodec.encode(command)
        try:
            await self.server.send_manscdp(dev, "Control", "DeviceControl", channel_id, self.server.next_sn(),
                                           [("PTZCmd", code), ("Info", [("ControlPriority", 5)])])
        except DeviceRefused as exc:
            self.metrics.inc("vsgw_gb28181_ptz_refused_total", by="device")
            raise NotSupported(f"the device refused PTZ on {channel_id} ({exc.status})") from None
        self.metrics.inc("vsgw_gb28181_ptz_total")

    async def request_keyframe(self, channel_id: str) -> bool:
        dev = self.device_of(channel_id)
        await self.server.send_manscdp(dev, "Control", "DeviceControl", channel_id, self.server.next_sn(),
                                       [("IFameCmd", "Send")])
        return True


__all__ = ["GbAdapter", "Invite"]
