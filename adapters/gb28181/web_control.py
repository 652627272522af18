"""HTTP routes for GB/T 28181 device control, presets, alarm/config queries and subscriptions (R1, R2).

Every route asks the gate first: PTZ-class commands (cruise, scan, aux/wiper, home position,
drag zoom, presets) need ``Action.PTZ`` on the camera; guard, record, alarm reset, TeleBoot,
queries and subscriptions need ``Action.MANAGE`` (on the camera, or on the device, which carries
the unit and the highest security level of its channels). The gate audits the decision with the
command; the outcome is audited after it. A wrong field is a 400 naming it; a device that refuses
or answers ERROR is a 502 carrying its answer; one that does not answer, a 504.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from adapters.base import NotSupported
from gateway.http.api import HttpError, json_response
from gateway.http.body import parse_object
from gateway.http.server import gateway_of, subject_of
from gateway.policy import Action
from gateway.policy.access import http_access
from gateway.policy.model import Resource

from . import control
from .control import CHANNEL_COMMANDS, COMMANDS, DEVICE_COMMANDS, PTZ, BadCommand, Control, DeviceError, NoAnswer
from .devtime import to_device
from .server import DeviceRefused
from .web import device_resource
from .subscribe import EXPIRES_MAX, EXPIRES_MIN, KINDS, Subscriptions

if TYPE_CHECKING:
    from gateway.app import Gateway

    from .adapter import GbAdapter

CONTROL = web.AppKey("gb28181_control", Control)
SUBSCRIPTIONS = web.AppKey("gb28181_subscriptions", Subscriptions)
CONFIG_TYPES = ("BasicParam", "VideoParamOpt", "SVACEncodeConfig", "SVACDecodeConfig", "VideoParamAttribute",
                "VideoRecordPlan", "VideoAlarmRecord", "PictureMask", "FrameMirror", "AlarmReport", "OSDConfig",
                "SnapShotConfig")


class DeviceAnswered(HttpError):
    """502 with what the device said (``answer``)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(502, "device_error", f"the device answered {answer.get('result') or 'without a result'}")
        self.text = json.dumps({"error": self.code, "message": f"the device answered "
                                f"{answer.get('result') or 'without a result'}", "answer": answer}, ensure_ascii=False)


def _bad(exc: BadCommand) -> HttpError:
    return HttpError(400, "bad_request", str(exc), field=exc.field)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    return parse_object(raw, request.charset) if raw.strip() else {}


def _adapter(request: web.Request) -> tuple[Gateway, GbAdapter, Control]:
    gw = gateway_of(request)
    ctl = request.app[CONTROL]
    return gw, ctl.adapter, ctl


def _device_gate(gw: Gateway, adapter: GbAdapter, device_id: str) -> Resource:
    return device_resource(gw, adapter.server.devices.get(device_id), device_id)


async def _allowed(request: web.Request, action: Action, resource: Resource, what: str) -> None:
    gw = gateway_of(request)
    decision = await gw.policy.authorize(http_access(request, action, resource, detail={"command": what}))
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)


async def _outcome(request: web.Request, resource: str, what: str, coro: Awaitable[Any]) -> Any:
    """Run the device call, audit how it went, map its failure to an HTTP error."""
    gw, subject = gateway_of(request), subject_of(request)
    rid = request.headers.get("X-Request-Id", "")[:64] or None
    error: HttpError | None = None
    try:
        result = await coro
    except NotSupported as exc:
        error = HttpError(501, "not_supported", str(exc))
    except DeviceError as exc:
        error = DeviceAnswered(exc.answer)
    except DeviceRefused as exc:
        error = HttpError(502, "device_refused", f"the device refused it: {exc}")
    except NoAnswer as exc:
        error = HttpError(504, "no_answer", str(exc))
    except TimeoutError:
        error = HttpError(504, "device_timeout", "the device did not answer the request")
    except (ConnectionError, OSError) as exc:
        error = HttpError(502, "device_unreachable", str(exc) or type(exc).__name__)
    except LookupError as exc:
        error = HttpError(404, "not_found", str(exc))
    await gw.audit.record(actor=subject.id, action=f"gb28181.{what}", resource=resource,
                          decision="failed" if error else "done", reason=error.code if error else "ok",
                          address=subject.address, request_id=rid)
    if error is not None:
        raise error
    return result


def _camera(request: web.Request) -> str:
    gw, adapter, _ = _adapter(request)
    cid = request.match_info["cid"]
    if cid not in gw.registry.channels:
        raise HttpError(404, "not_found", f"no camera {cid!r}")
    if not adapter.owns(cid):
        raise HttpError(501, "not_supported", f"camera {cid!r} is not a GB/T 28181 channel")
    return cid


def _device(request: web.Request) -> str:
    _, adapter, _ = _adapter(request)
    device_id = request.match_info["id"]
    if adapter.server.devices.get(device_id) is None:
        raise HttpError(404, "not_found", f"no GB/T 28181 device {device_id!r}")
    return device_id


# -- channels -----------------------------------------------------------------------------
async def channel_control(request: web.Request) -> web.Response:
    gw, _, ctl = _adapter(request)
    try:
        cmd = control.parse(await _body(request), CHANNEL_COMMANDS)
    except BadCommand as exc:
        raise _bad(exc) from None
    cid = request.match_info["cid"]
    await _allowed(request, Action.PTZ if cmd.action == PTZ else Action.MANAGE, gw.camera_resource(cid), cmd.name)
    cid = _camera(request)
    return json_response(await _outcome(request, f"camera:{cid}", cmd.name, ctl.on_channel(cid, cmd)))


async def channel_presets(request: web.Request) -> web.Response:
    gw, _, ctl = _adapter(request)
    cid = request.match_info["cid"]
    await _allowed(request, Action.PTZ, gw.camera_resource(cid), "preset_query")
    cid = _camera(request)
    presets = await _outcome(request, f"camera:{cid}", "preset_query", ctl.presets(cid))
    return json_response({"camera": cid, "presets": presets})


# -- devices ------------------------------------------------------------------------------
async def device_control(request: web.Request) -> web.Response:
    gw, adapter, ctl = _adapter(request)
    data = await _body(request)
    try:
        cmd = control.parse(data, DEVICE_COMMANDS, extra=("channel",))
    except BadCommand as exc:
        raise _bad(exc) from None
    device_id = request.match_info["id"]
    target = data.get("channel", device_id)
    if not isinstance(target, str) or not target:
        raise HttpError(400, "bad_request", "channel: a channel ID of this device", field="channel")
    await _allowed(request, Action.MANAGE, _device_gate(gw, adapter, device_id), cmd.name)
    device_id = _device(request)
    if target != device_id and target not in adapter.server.devices.get(device_id).channels \
            and target not in {n.id for n in adapter.tree(device_id)}:
        raise HttpError(400, "bad_request", f"channel: {target!r} is not in device {device_id}'s catalog",
                        field="channel")

    async def run() -> dict[str, Any]:
        return await ctl.send(ctl.device(device_id), target, cmd)

    return json_response(await _outcome(request, f"device:{device_id}", cmd.name, run()))


def _int(data: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    return control.Int(low, high, default).check(name, data.get(name))


def _time(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadCommand(name, f"{name}: an ISO 8601 time with its zone, e.g. 2024-05-01T08:00:00+08:00")
    return moment


def _only(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadCommand(unknown[0], f"unknown field {unknown[0]!r}")


async def alarm_query(request: web.Request) -> web.Response:
    gw, adapter, ctl = _adapter(request)
    data = await _body(request)
    try:
        _only(data, {"start", "end", "priority_min", "priority_max", "method", "type"})
        start, end = _time(data, "start"), _time(data, "end")
        if start and end and end <= start:
            raise BadCommand("end", "end: after start")
        fields: list[tuple[str, object]] = [
            ("StartAlarmPriority", _int(data, "priority_min", 0, 4, 0)),
            ("EndAlarmPriority", _int(data, "priority_max", 0, 4, 0)),
            ("AlarmMethod", _int(data, "method", 0, 9, 0)), ("AlarmType", _int(data, "type", 0, 99, 0))]
    except BadCommand as exc:
        raise _bad(exc) from None
    device_id = request.match_info["id"]
    await _allowed(request, Action.MANAGE, _device_gate(gw, adapter, device_id), "alarm_query")
    device_id = _device(request)
    zone = adapter.cfg.zone_for(device_id)
    fields += [(tag, to_device(t, zone)) for tag, t in (("StartAlarmTime", start), ("EndAlarmTime", end)) if t]
    sn = await _outcome(request, f"device:{device_id}", "alarm_query", ctl.alarm_query(device_id, fields))
    return json_response({"device": device_id, "sn": sn, "sent": True})


async def device_config(request: web.Request) -> web.Response:
    gw, adapter, ctl = _adapter(request)
    types = [t for t in request.query.get("type", "BasicParam").split(",") if t]
    bad = [t for t in types if t not in CONFIG_TYPES]
    if bad or not types:
        raise HttpError(400, "bad_request", f"type: one or more of {', '.join(CONFIG_TYPES)}", field="type")
    device_id = request.match_info["id"]
    await _allowed(request, Action.MANAGE, _device_gate(gw, adapter, device_id), "config_download")
    device_id = _device(request)
    config = await _outcome(request, f"device:{device_id}", "config_download", ctl.config(device_id, types))
    return json_response({"device": device_id, "config": config})


# -- subscriptions ------------------------------------------------------------------------
def _kind(request: web.Request) -> str:
    kind = request.match_info["event"].lower()
    if kind not in KINDS:
        raise HttpError(400, "bad_request", f"event: one of {', '.join(KINDS)}", field="event")
    return kind


async def list_subscriptions(request: web.Request) -> web.Response:
    gw, adapter, _ = _adapter(request)
    device_id = request.match_info["id"]
    await _allowed(request, Action.MANAGE, _device_gate(gw, adapter, device_id), "subscriptions")
    device_id = _device(request)
    subs = request.app[SUBSCRIPTIONS].of(device_id)
    return json_response({"device": device_id, "subscriptions": [s.json() for s in subs]})


async def subscribe(request: web.Request) -> web.Response:
    gw, adapter, _ = _adapter(request)
    kind = _kind(request)
    data = await _body(request)
    try:
        allowed = {"expires"} | ({"interval"} if kind == "mobileposition" else set()) \
            | ({"priority_min", "priority_max", "method"} if kind == "alarm" else set())
        _only(data, allowed)
        expires = _int(data, "expires", EXPIRES_MIN, EXPIRES_MAX, 3600)
        body: list[tuple[str, object]] = []
        if kind == "mobileposition":
            body = [("Interval", _int(data, "interval", 1, 3600, 5))]
        elif kind == "alarm":
            body = [("StartAlarmPriority", _int(data, "priority_min", 0, 4, 0)),
                    ("EndAlarmPriority", _int(data, "priority_max", 0, 4, 0)),
                    ("AlarmMethod", _int(data, "method", 0, 9, 0))]
    except BadCommand as exc:
        raise _bad(exc) from None
    device_id = request.match_info["id"]
    await _allowed(request, Action.MANAGE, _device_gate(gw, adapter, device_id), f"subscribe_{kind}")
    device_id = _device(request)
    sub = await _outcome(request, f"device:{device_id}", f"subscribe_{kind}",
                         request.app[SUBSCRIPTIONS].subscribe(device_id, kind, expires, body))
    return json_response(sub.json())


async def unsubscribe(request: web.Request) -> web.Response:
    gw, adapter, _ = _adapter(request)
    kind = _kind(request)
    device_id = request.match_info["id"]
    await _allowed(request, Action.MANAGE, _device_gate(gw, adapter, device_id), f"unsubscribe_{kind}")
    device_id = _device(request)
    sub = await _outcome(request, f"device:{device_id}", f"unsubscribe_{kind}",
                         request.app[SUBSCRIPTIONS].unsubscribe(device_id, kind))
    if sub is None:
        raise HttpError(404, "not_found", f"device {device_id} has no {kind} subscription")
    return json_response(sub.json())


def _command_schema(names: frozenset[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    variants = []
    for name in sorted(names):
        props: dict[str, Any] = {"command": {"const": name}}
        for key, kind in COMMANDS[name].args.items():
            props[key] = {"type": "boolean"} if isinstance(kind, control.Bool) else {
                "type": "integer", "minimum": kind.low, "maximum": kind.high,
                **({"default": kind.default} if kind.default is not None else {})}
        required = ["command", *(k for k, v in COMMANDS[name].args.items()
                                 if isinstance(v, control.Bool) or v.default is None)]
        variants.append({"type": "object", "properties": {**props, **(extra or {})}, "required": required,
                         "additionalProperties": False})
    return {"oneOf": variants, "discriminator": {"propertyName": "command"}}


def add_routes(gw: Gateway, adapter: GbAdapter) -> None:
    ctl = Control(adapter)
    subs = Subscriptions(adapter, gw.bus.publish)
    gw.app[CONTROL], gw.app[SUBSCRIPTIONS] = ctl, subs
    gw.on_stop.append(subs.stop)
    api, obj, tag = gw.api, {"type": "object"}, "gb28181"
    base = "/api/gb28181"
    api.route("POST", base + "/channels/{cid}/control", channel_control, tag=tag, response=obj,
              summary="DeviceControl on a channel: cruise, scan, aux/wiper, home position, drag zoom, "
                      "record, guard, alarm reset", body=_command_schema(CHANNEL_COMMANDS))
    api.route("GET", base + "/channels/{cid}/presets", channel_presets, tag=tag, response=obj,
              summary="The camera's presets (PresetQuery)")
    api.route("POST", base + "/devices/{id}/control", device_control, tag=tag, response=obj,
              summary="DeviceControl on a device: TeleBoot, guard, alarm reset (optionally on one of its channels)",
              body=_command_schema(DEVICE_COMMANDS, {"channel": {"type": "string"}}))
    api.route("POST", base + "/devices/{id}/alarms/query", alarm_query, tag=tag, response=obj,
              summary="Ask the device for its alarms; they arrive as 'alarm' events",
              body={"type": "object", "properties": {
                  "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"},
                  "priority_min": {"type": "integer", "minimum": 0, "maximum": 4},
                  "priority_max": {"type": "integer", "minimum": 0, "maximum": 4},
                  "method": {"type": "integer", "minimum": 0, "maximum": 9},
                  "type": {"type": "integer", "minimum": 0, "maximum": 99}}})
    api.route("GET", base + "/devices/{id}/config", device_config, tag=tag, response=obj,
              summary="The device's configuration (ConfigDownload)",
              query={"type": {"type": "string", "description": "comma list, default BasicParam"}})
    api.route("GET", base + "/devices/{id}/subscriptions", list_subscriptions, tag=tag, response=obj,
              summary="The device's subscriptions and their state")
    api.route("POST", base + "/devices/{id}/subscriptions/{event}", subscribe, tag=tag, response=obj,
              summary="Subscribe to catalog, alarm or mobileposition (refreshed before it expires)",
              body={"type": "object", "properties": {
                  "expires": {"type": "integer", "minimum": EXPIRES_MIN, "maximum": EXPIRES_MAX, "default": 3600},
                  "interval": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 5},
                  "priority_min": {"type": "integer"}, "priority_max": {"type": "integer"},
                  "method": {"type": "integer"}}})
    api.route("DELETE", base + "/devices/{id}/subscriptions/{event}", unsubscribe, tag=tag, response=obj,
              summary="Cancel a subscription (SUBSCRIBE Expires: 0)")
