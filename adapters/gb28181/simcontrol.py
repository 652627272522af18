"""The simulator's device-management side: DeviceControl with its Response, PresetQuery,
ConfigDownload and alarm queries, and the notifier end of SUBSCRIBE (R1).

State a real device keeps is kept here (presets, cruises, guard, recording, home position, aux
switches, the alarms it raised) so tests can check that a command changed it. Subscriptions are
dialogs by Call-ID; NOTIFYs go out in them (Catalog events, alarms, and MobilePosition every
``Interval`` seconds). A TeleBoot "restarts" the device: it forgets its subscriptions and registers
anew, as a rebooted camera does. Quirks: no DeviceControl Response, Result ERROR, refused
SUBSCRIBE, forgotten subscription dialogs (481 to a refresh), positions by MESSAGE.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import manscdp, ptz
from .manscdp import Manscdp
from .sip import SipMessage, param, response
from .transport import Peer

if TYPE_CHECKING:
    from .simulator import Simulator

ANSWERED = ("recordcmd", "guardcmd", "alarmcmd", "homeposition")


@dataclass(slots=True)
class SimSubscription:
    call_id: str
    cmd: str  # the Query's CmdType: Catalog | Alarm | MobilePosition
    event: str
    platform_tag: str
    expires_at: float
    interval: float = 5.0
    refreshes: int = 0
    task: asyncio.Task | None = None


@dataclass(slots=True)
class DeviceState:
    presets: dict[int, str] = field(default_factory=lambda: {1: "大门", 2: "停车场"})
    cruises: dict[int, dict[str, Any]] = field(default_factory=dict)
    scanning: dict[int, dict[str, Any]] = field(default_factory=dict)
    aux: dict[int, bool] = field(default_factory=dict)
    guard: bool = False
    recording: dict[str, bool] = field(default_factory=dict)
    home: dict[str, int] = field(default_factory=dict)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    boots: int = 0
    position: tuple[float, float] = (116.397, 39.909)


class SimControl:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.state = DeviceState()
        self.subscriptions: dict[str, SimSubscription] = {}
        self.accepted: list[tuple[str, str, bool, int]] = []  # (Call-ID, CmdType, in dialog, Expires) taken

    # -- DeviceControl ---------------------------------------------------------------------
    async def control(self, msg: Manscdp) -> None:
        root, st = msg.root, self.state
        code = root.get("ptzcmd")
        detail: dict[str, Any] = {"target": msg.device_id, "ptzcmd": code, "command": None, "op": None,
                                  "fields": {c.tag: c.text for c in root.children if not c.children}}
        if code:
            frame = ptz.frame(code)
            if frame.instruction in ptz.EXTENDED or frame.instruction == ptz.SCAN:
                detail["op"] = ptz.describe(frame)
                self._extended(detail["op"])
            else:
                detail["command"] = cmd = ptz.decode(code)
                if cmd.preset is not None and cmd.preset_action == "set":
                    st.presets.setdefault(cmd.preset, f"preset {cmd.preset}")
                elif cmd.preset is not None and cmd.preset_action == "delete":
                    st.presets.pop(cmd.preset, None)
                elif cmd.is_stop:
                    for job in (*st.cruises.values(), *st.scanning.values()):
                        job["running"] = False
        for name in ("dragzoomin", "dragzoomout", "homeposition"):
            node = root.find(name)
            if node is not None:
                detail[name] = {c.tag: c.text for c in node.children}
        await self.sim._note("MESSAGE", "DeviceControl", detail)
        if root.get("teleboot").lower() == "boot":
            self.sim._spawn(self._reboot())
            return
        if not any(root.find(tag) is not None for tag in ANSWERED):
            return
        self._apply(msg)
        quirks = self.sim.cfg.quirks
        if quirks.no_control_response:
            return
        result = "ERROR" if quirks.control_error else "OK"
        await self.sim.send_manscdp("Response", "DeviceControl", [("Result", result)], sn=msg.sn,
                                    device_id=msg.device_id)

    def _extended(self, op: dict[str, Any]) -> None:
        st, name = self.state, op["op"]
        if name.startswith("cruise"):
            cruise = st.cruises.setdefault(op["cruise"], {"points": [], "speed": None, "dwell": None, "running": False})
            if name == "cruise_add":
                cruise["points"].append(op["preset"])
            elif name == "cruise_remove":
                cruise["points"] = [p for p in cruise["points"] if op["preset"] not in (0, p)]
            elif name == "cruise_speed":
                cruise["speed"] = op["speed"]
            elif name == "cruise_dwell":
                cruise["dwell"] = op["seconds"]
            elif name == "cruise_start":
                cruise["running"] = True
        elif name.startswith("scan"):
            scan = st.scanning.setdefault(op["scan"], {"left": False, "right": False, "speed": None, "running": False})
            if name == "scan_speed":
                scan["speed"] = op["speed"]
            elif name == "scan_start":
                scan["running"] = True
            else:
                scan[name.removeprefix("scan_")] = True
        else:
            st.aux[op["switch"]] = name == "aux_on"

    def _apply(self, msg: Manscdp) -> None:
        root, st = msg.root, self.state
        if root.get("recordcmd"):
            st.recording[msg.device_id] = root.get("recordcmd") == "Record"
        if root.get("guardcmd"):
            st.guard = root.get("guardcmd") == "SetGuard"
        home = root.find("homeposition")
        if home is not None:
            st.home = {"enabled": home.int("enabled"), "preset": home.int("presetindex"),
                       "reset_time": home.int("resettime")}

    async def _reboot(self) -> None:
        """Forget everything dialog-bound and register again, as after a power cycle."""
        self.state.boots += 1
        self._drop_all()
        self.sim.call_id = ""
        await self.sim.register()
        await self.sim._note("BOOT", "registered", self.state.boots)

    # -- queries ---------------------------------------------------------------------------
    async def query(self, msg: Manscdp) -> bool:
        """Answer PresetQuery, ConfigDownload and Alarm; False for anything else."""
        cmd = msg.cmd.lower()
        if cmd == "presetquery":
            items = [("Item", [("PresetID", pid), ("PresetName", name)])
                     for pid, name in sorted(self.state.presets.items())]
            packets = [[it] for it in items] if self.sim.cfg.quirks.split_catalog and items else [items]
            for chunk in packets:
                await self.sim.send_manscdp("Response", "PresetQuery", [
                    ("SumNum", len(items)), (f'PresetList Num="{len(chunk)}"', chunk)], sn=msg.sn,
                    device_id=msg.device_id)
        elif cmd == "configdownload":
            c = self.sim.cfg
            await self.sim.send_manscdp("Response", "ConfigDownload", [("Result", "OK"), ("BasicParam", [
                ("Name", c.name), ("Expiration", c.expires), ("HeartBeatInterval", int(c.keepalive_interval)),
                ("HeartBeatCount", 3), ("PositionCapability", 1)])], sn=msg.sn, device_id=msg.device_id)
        elif cmd == "alarm":
            low, high = msg.root.int("startalarmpriority"), msg.root.int("endalarmpriority")
            for alarm in list(self.state.alarms):
                if (not low or alarm["priority"] >= low) and (not high or alarm["priority"] <= high):
                    await self.sim.send_manscdp("Notify", "Alarm", alarm["fields"], device_id=alarm["channel"])
        else:
            return False
        return True

    def alarm_fields(self, channel_id: str, priority: int, method: int, alarm_type: int,
                     description: str) -> list[tuple[str, object]]:
        fields: list[tuple[str, object]] = [
            ("AlarmPriority", priority), ("AlarmMethod", method), ("AlarmTime", time.strftime("%Y-%m-%dT%H:%M:%S")),
            ("AlarmDescription", description), ("Info", [("AlarmType", alarm_type)])]
        self.state.alarms.append({"channel": channel_id, "priority": priority, "fields": fields})
        return fields

    # -- subscriptions (the notifier) --------------------------------------------------------
    async def subscribe(self, req: SipMessage, peer: Peer) -> None:
        ep, quirks = self.sim.endpoint, self.sim.cfg.quirks
        raw = (req.get("expires") or "3600").strip()
        expires = int(raw) if raw.isdigit() else 3600
        in_dialog = param(req.get("to") or "", "tag") is not None
        sub = self.subscriptions.get(req.call_id)
        if quirks.refuse_subscribe:
            ep.reply(req, response(req, 489, "Bad Event", to_tag=self.sim.tag), peer)
            await self.sim._note("SUBSCRIBE", "refused", req.call_id)
            return
        if in_dialog and (sub is None or quirks.forget_subscriptions):
            ep.reply(req, response(req, 481), peer)
            await self.sim._note("SUBSCRIBE", "unknown dialog", req.call_id)
            return
        msg = manscdp.parse(req.body)
        out = response(req, 200, to_tag=self.sim.tag)
        out.add("Expires", str(expires))
        out.add("Contact", f"<sip:{self.sim.cfg.device_id}@{ep.host}:{ep.port}>")
        ep.reply(req, out, peer)
        if expires == 0:
            self._drop(req.call_id)
            await self.sim._note("SUBSCRIBE", "cancelled", req.body)
            return
        if sub is None:
            sub = self.subscriptions[req.call_id] = SimSubscription(
                req.call_id, msg.cmd, (req.get("event") or "").split(";")[0], param(req.get("from") or "", "tag") or "",
                time.time() + expires)
        else:
            sub.refreshes += 1
            sub.expires_at = time.time() + expires
        interval = msg.root.int("interval", 0)
        if sub.cmd.lower() == "mobileposition" and interval and sub.task is None:
            sub.interval = float(interval)
            sub.task = self.sim._spawn(self._positions(sub))
        self.accepted.append((req.call_id, msg.cmd, in_dialog, expires))
        await self.sim._note("SUBSCRIBE", msg.cmd + (" refresh" if in_dialog else ""), req.body)

    def _drop(self, call_id: str) -> None:
        sub = self.subscriptions.pop(call_id, None)
        if sub is not None and sub.task is not None:
            sub.task.cancel()

    def _drop_all(self) -> None:
        for call_id in list(self.subscriptions):
            self._drop(call_id)

    def of(self, cmd: str) -> list[SimSubscription]:
        return [s for s in self.subscriptions.values() if s.cmd.lower() == cmd.lower() and s.expires_at > time.time()]

    async def notify(self, sub: SimSubscription, cmd: str, fields: list[tuple[str, object]],
                     device_id: str | None = None, state: str = "active") -> int:
        """One NOTIFY in ``sub``'s dialog; returns the platform's status."""
        sim = self.sim
        body = manscdp.build("Notify", cmd, next(sim._sn), device_id or sim.cfg.device_id, fields,
                             encoding=sim.cfg.quirks.charset)
        req = sim._request("NOTIFY", body, manscdp.CONTENT_TYPE, call_id=sub.call_id)
        req.set("To", f"<sip:{sim.cfg.server_id}@{sim.cfg.realm}>;tag={sub.platform_tag}")
        req.add("Event", sub.event)
        left = max(0, int(sub.expires_at - time.time()))
        req.add("Subscription-State", f"active;expires={left}" if state == "active" else f"{state};reason=timeout")
        resp = await sim.send(req)
        return resp.status or 0

    async def _positions(self, sub: SimSubscription) -> None:
        lon, lat = self.state.position
        step = 0
        while sub.expires_at > time.time():
            step += 1
            fields: list[tuple[str, object]] = [
                ("Time", time.strftime("%Y-%m-%dT%H:%M:%S")), ("Longitude", f"{lon + step * 1e-4:.6f}"),
                ("Latitude", f"{lat:.6f}"), ("Speed", 12.5), ("Direction", 90), ("Altitude", 44)]
            with contextlib.suppress(TimeoutError, ConnectionError):
                if self.sim.cfg.quirks.position_by_message:
                    await self.sim.send_manscdp("Notify", "MobilePosition", fields)
                else:
                    await self.notify(sub, "MobilePosition", fields)
            await asyncio.sleep(sub.interval)
