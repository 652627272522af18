"""GB/T 28181 DeviceControl beyond pan/tilt/zoom, and the queries that go with it (R1).

A command is named by a JSON ``{"command": ...}`` and checked against :data:`COMMANDS` (each
field typed and bounded; a wrong one raises :class:`BadCommand` naming it). Cruise, scan and the
auxiliary switches travel as PTZCmd frames (:mod:`.ptz`), which the standard answers with the
MESSAGE's 200 only. RecordCmd, GuardCmd, AlarmCmd and HomePosition are answered by a
``Response/DeviceControl`` with ``Result`` OK or ERROR, correlated by (DeviceID, CmdType, SN) and
taken only from the device asked; ERROR raises :class:`DeviceError` carrying the device's answer,
no answer at all :class:`NoAnswer`. TeleBoot gets no Response: the device restarts. PresetQuery
may answer in several packets (WVP collects them the same way): items are gathered by PresetID
until the announced total arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.base import NotSupported

from . import ptz
from .catalog import NO_PTZ
from .devices import Device
from .manscdp import Manscdp, Node

if TYPE_CHECKING:
    from .adapter import GbAdapter

PTZ, MANAGE = "ptz", "manage"


class BadCommand(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class DeviceError(Exception):
    """The device answered Result ERROR (or something other than OK)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(f"the device answered {answer.get('result') or 'no result'}")
        self.answer = answer


class NoAnswer(TimeoutError):
    """The device took the MESSAGE (200) but sent no Response in time."""


@dataclass(frozen=True, slots=True)
class Int:
    low: int
    high: int
    default: int | None = None  # None: required

    def check(self, name: str, value: object) -> int:
        if value is None:
            if self.default is None:
                raise BadCommand(name, f"{name} is required")
            return self.default
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise BadCommand(name, f"{name}: an integer in {self.low}..{self.high}")
        return value


@dataclass(frozen=True, slots=True)
class Bool:
    def check(self, name: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise BadCommand(name, f"{name}: true or false")
        return value


@dataclass(frozen=True, slots=True)
class Command:
    """What goes to the device: the DeviceControl fields, whether a Response follows, and which
    gate action it needs."""

    name: str
    action: str
    fields: list[tuple[str, object]]
    answered: bool = False
    needs_ptz: bool = False  # refused on a camera the catalog declares fixed


@dataclass(frozen=True, slots=True)
class Spec:
    action: str
    args: dict[str, Int | Bool]
    build: Callable[[dict[str, Any]], tuple[list[tuple[str, object]], bool]]
    needs_ptz: bool = False
    device_level: bool = False  # also (or only) sent to the device rather than a channel


def _frame(make: Callable[[dict[str, Any]], ptz.PtzBytes]):
    return lambda a: ([("PTZCmd", make(a).hex()), ("Info", [("ControlPriority", 5)])], False)


def _home(a: dict[str, Any]) -> tuple[list[tuple[str, object]], bool]:
    if a["enabled"] and a["preset"] == 0:
        raise BadCommand("preset", "preset: 1..255 when enabled")
    return [("HomePosition", [("Enabled", int(a["enabled"])), ("ResetTime", a["reset_time"]),
                              ("PresetIndex", a["preset"])])], True


def _alarm_reset(a: dict[str, Any]) -> tuple[list[tuple[str, object]], bool]:
    info = [(tag, a[key]) for tag, key in (("AlarmMethod", "method"), ("AlarmType", "type")) if a[key]]
    return [("AlarmCmd", "ResetAlarm"), *([("Info", info)] if info else [])], True


def _drag(tag: str):
    keys = (("Length", "length"), ("Width", "width"), ("MidPointX", "mid_x"), ("MidPointY", "mid_y"),
            ("LengthX", "length_x"), ("LengthY", "length_y"))
    return lambda a: ([(tag, [(t, a[k]) for t, k in keys])], False)


CRUISE, SCAN, SWITCH = Int(0, 255), Int(0, 255), Int(1, 255, ptz.WIPER)
WIDE = Int(1, ptz.MAX_12BIT)
PIXELS = Int(0, 65535)
DRAG = {"length": PIXELS, "width": PIXELS, "mid_x": PIXELS, "mid_y": PIXELS, "length_x": PIXELS, "length_y": PIXELS}
COMMANDS: dict[str, Spec] = {
    "cruise_add": Spec(PTZ, {"cruise": CRUISE, "preset": Int(1, 255)},
                       _frame(lambda a: ptz.cruise_add(a["cruise"], a["preset"])), True),
    "cruise_remove": Spec(PTZ, {"cruise": CRUISE, "preset": Int(0, 255, 0)},
                          _frame(lambda a: ptz.cruise_remove(a["cruise"], a["preset"])), True),
    "cruise_speed": Spec(PTZ, {"cruise": CRUISE, "speed": WIDE},
                         _frame(lambda a: ptz.cruise_speed(a["cruise"], a["speed"])), True),
    "cruise_dwell": Spec(PTZ, {"cruise": CRUISE, "seconds": WIDE},
                         _frame(lambda a: ptz.cruise_dwell(a["cruise"], a["seconds"])), True),
    "cruise_start": Spec(PTZ, {"cruise": CRUISE}, _frame(lambda a: ptz.cruise_start(a["cruise"])), True),
    "cruise_stop": Spec(PTZ, {}, _frame(lambda a: ptz.STOP), True),
    "scan_start": Spec(PTZ, {"scan": SCAN}, _frame(lambda a: ptz.scan(a["scan"], ptz.SCAN_START)), True),
    "scan_left": Spec(PTZ, {"scan": SCAN}, _frame(lambda a: ptz.scan(a["scan"], ptz.SCAN_LEFT)), True),
    "scan_right": Spec(PTZ, {"scan": SCAN}, _frame(lambda a: ptz.scan(a["scan"], ptz.SCAN_RIGHT)), True),
    "scan_speed": Spec(PTZ, {"scan": SCAN, "speed": WIDE}, _frame(lambda a: ptz.scan_speed(a["scan"], a["speed"])),
                       True),
    "scan_stop": Spec(PTZ, {}, _frame(lambda a: ptz.STOP), True),
    "aux_on": Spec(PTZ, {"switch": SWITCH}, _frame(lambda a: ptz.aux(a["switch"], True))),
    "aux_off": Spec(PTZ, {"switch": SWITCH}, _frame(lambda a: ptz.aux(a["switch"], False))),
    "wiper_on": Spec(PTZ, {}, _frame(lambda a: ptz.aux(ptz.WIPER, True))),
    "wiper_off": Spec(PTZ, {}, _frame(lambda a: ptz.aux(ptz.WIPER, False))),
    "home_position": Spec(PTZ, {"enabled": Bool(), "preset": Int(0, 255, 0), "reset_time": Int(0, 86400, 60)},
                          _home, True),
    "drag_zoom_in": Spec(PTZ, DRAG, _drag("DragZoomIn")),
    "drag_zoom_out": Spec(PTZ, DRAG, _drag("DragZoomOut")),
    "record_start": Spec(MANAGE, {}, lambda a: ([("RecordCmd", "Record")], True)),
    "record_stop": Spec(MANAGE, {}, lambda a: ([("RecordCmd", "StopRecord")], True)),
    "guard_set": Spec(MANAGE, {}, lambda a: ([("GuardCmd", "SetGuard")], True), device_level=True),
    "guard_reset": Spec(MANAGE, {}, lambda a: ([("GuardCmd", "ResetGuard")], True), device_level=True),
    "alarm_reset": Spec(MANAGE, {"method": Int(0, 9, 0), "type": Int(0, 99, 0)}, _alarm_reset, device_level=True),
    "teleboot": Spec(MANAGE, {}, lambda a: ([("TeleBoot", "Boot")], False), device_level=True),
}
CHANNEL_COMMANDS = frozenset(name for name in COMMANDS if name != "teleboot")
DEVICE_COMMANDS = frozenset(name for name, spec in COMMANDS.items() if spec.device_level)


def parse(data: object, allowed: frozenset[str], extra: tuple[str, ...] = ()) -> Command:
    """A JSON object → a :class:`Command`; BadCommand names the first wrong field. ``extra`` are
    fields the caller reads itself (e.g. ``channel``)."""
    if not isinstance(data, dict):
        raise BadCommand("command", "expected a JSON object")
    name = data.get("command")
    if not isinstance(name, str) or name not in allowed:
        raise BadCommand("command", f"command: one of {', '.join(sorted(allowed))}")
    spec = COMMANDS[name]
    unknown = sorted(set(data) - {"command", *spec.args, *extra})
    if unknown:
        raise BadCommand(unknown[0], f"unknown field {unknown[0]!r} for {name}")
    args = {key: kind.check(key, data.get(key)) for key, kind in spec.args.items()}
    fields, answered = spec.build(args)
    return Command(name, spec.action, fields, answered, spec.needs_ptz)


@dataclass(slots=True)
class _Presets:
    device: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    total: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Control:
    """Sends commands and queries through the adapter's SIP server."""

    def __init__(self, adapter: GbAdapter) -> None:
        self.adapter = adapter
        self.server = adapter.server
        self.metrics = adapter.metrics
        self._presets: dict[tuple[str, int], _Presets] = {}
        self.server.on_message.append(self._message)

    @property
    def timeout(self) -> float:
        return self.adapter.cfg.request_timeout

    def device(self, device_id: str) -> Device:
        dev = self.server.devices.get(device_id)
        if dev is None:
            raise LookupError(f"no GB/T 28181 device {device_id!r}")
        if not dev.online:
            raise ConnectionError(f"device {device_id} is offline")
        return dev

    async def on_channel(self, channel_id: str, cmd: Command) -> dict[str, Any]:
        dev = self.adapter.device_of(channel_id)
        ch = dev.channels.get(channel_id)
        if cmd.needs_ptz and ch is not None and ch.extra.get("ptz_type") in NO_PTZ:
            self.metrics.inc("vsgw_gb28181_control_total", command=cmd.name, result="fixed_camera")
            raise NotSupported(f"channel {channel_id} is a fixed camera (PTZType 3): no {cmd.name}")
        return await self.send(dev, channel_id, cmd)

    async def send(self, dev: Device, target: str, cmd: Command) -> dict[str, Any]:
        """DeviceControl to ``target`` (the device or one of its channels); the device's Response
        where the standard has one."""
        sn = self.server.next_sn()
        key = self.server.collector.expect(target, "DeviceControl", sn, dev.id) if cmd.answered else None
        try:
            await self.server.send_manscdp(dev, "Control", "DeviceControl", target, sn, cmd.fields)
        except BaseException:
            if key is not None:
                self.server.collector.cancel(key)
            self.metrics.inc("vsgw_gb28181_control_total", command=cmd.name, result="refused")
            raise
        if key is None:
            self.metrics.inc("vsgw_gb28181_control_total", command=cmd.name, result="sent")
            return {"command": cmd.name, "target": target, "answered": False}
        answer = await self.server.collector.wait(key, self.timeout)
        if answer.first is None:
            self.metrics.inc("vsgw_gb28181_control_total", command=cmd.name, result="no_answer")
            raise NoAnswer(f"device {dev.id} took {cmd.name} but sent no DeviceControl Response "
                           f"within {self.timeout:g} s")
        fields = leaves(answer.first.root)
        result = fields.get("result", "").upper()
        self.metrics.inc("vsgw_gb28181_control_total", command=cmd.name, result="ok" if result == "OK" else "error")
        if result != "OK":
            raise DeviceError(fields)
        return {"command": cmd.name, "target": target, "answered": True, "result": "OK"}

    # -- queries ------------------------------------------------------------------------
    async def presets(self, channel_id: str) -> list[dict[str, Any]]:
        """PresetQuery → ``[{"id": 1, "name": "gate"}, …]`` sorted by id."""
        dev = self.adapter.device_of(channel_id)
        sn = self.server.next_sn()
        slot = self._presets[(channel_id, sn)] = _Presets(dev.id)
        try:
            await self.server.send_manscdp(dev, "Query", "PresetQuery", channel_id, sn)
            try:
                async with asyncio.timeout(self.timeout):
                    await slot.done.wait()
            except TimeoutError:
                if not slot.items and slot.total is None:
                    raise NoAnswer(f"device {dev.id} sent no PresetQuery answer within {self.timeout:g} s") from None
        finally:
            self._presets.pop((channel_id, sn), None)
        return sorted(slot.items.values(), key=lambda p: (p["id"] if isinstance(p["id"], int) else 1 << 30, p["name"]))

    async def config(self, device_id: str, types: list[str]) -> dict[str, Any]:
        """ConfigDownload (BasicParam: heartbeat interval and count, expiry…) as nested dicts."""
        dev = self.device(device_id)
        answer = await self.server.query(dev, "ConfigDownload", dev.id, [("ConfigType", "/".join(types))],
                                         timeout=self.timeout)
        if answer.first is None:
            raise NoAnswer(f"device {dev.id} sent no ConfigDownload answer within {self.timeout:g} s")
        out = tree(answer.first.root)
        if str(out.get("result", "OK")).upper() != "OK":
            raise DeviceError(out)
        return out

    async def alarm_query(self, device_id: str, fields: list[tuple[str, object]]) -> int:
        """Query Alarm: the device answers with Alarm notifies, which reach the bus like any
        alarm. Returns the query's SN."""
        dev = self.device(device_id)
        sn = self.server.next_sn()
        await self.server.send_manscdp(dev, "Query", "Alarm", dev.id, sn, fields)
        self.metrics.inc("vsgw_gb28181_alarm_query_total")
        return sn

    def _message(self, dev: Device, msg: Manscdp) -> None:
        if msg.kind != "response" or msg.cmd.lower() != "presetquery":
            return
        slot = self._presets.get((msg.device_id, msg.sn))
        if slot is None or slot.device != dev.id:  # not asked, or another device answering in its name
            return
        lst = msg.root.find("presetlist")
        items = lst.findall("item") if lst is not None else []
        for item in items:
            pid = item.get("presetid")
            if pid:
                slot.items[pid] = {"id": int(pid) if pid.isdigit() else pid, "name": item.get("presetname")}
        announced = msg.root.int("sumnum", -1)
        if announced < 0 and lst is not None:
            announced = int(lst.attrs.get("num", "0")) if lst.attrs.get("num", "").isdigit() else len(items)
        slot.total = max(slot.total or 0, announced, 0)
        if len(slot.items) >= slot.total:
            slot.done.set()


def leaves(node: Node) -> dict[str, str]:
    """A MANSCDP answer's top-level text fields, lower-cased names (``result``, ``errorinfo``…)."""
    return {c.tag: c.text for c in node.children if not c.children and c.tag not in ("cmdtype", "sn")}


def tree(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in node.children:
        if c.tag in ("cmdtype", "sn"):
            continue
        out[c.tag] = tree(c) if c.children else c.text
    return out
