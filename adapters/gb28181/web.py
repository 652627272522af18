"""HTTP routes for managing GB/T 28181 devices (R1, R15, R18).

Every route asks the gate first: reads with LIST, writes with MANAGE, on the device's resource
(:func:`device_resource`); a channel's recordings with VIEW_PLAYBACK on its camera and the window
asked for. The device's network address and Contact appear only for callers who may MANAGE it;
passwords never appear. Writes are audited with what they did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.http.api import HttpError, json_response
from gateway.http.body import json_object
from gateway.http.server import gateway_of, subject_of
from gateway.http.web_core import camera_json
from gateway.policy import Action, Resource
from gateway.policy.access import http_access
from gateway.recording.index import iso, parse_time

from . import manage
from .catalog import STREAMABLE
from .manage import DeviceOffline, UnknownDevice
from .results import query_failure
from .schemas import DEVICE, DEVICE_DETAIL, RECORDS, SETTINGS_BODY, SETTINGS_RESULT, STATUS, SYNC
from .server import DeviceRefused
from .settings import SettingsError

if TYPE_CHECKING:
    from gateway.app import Gateway

    from .adapter import GbAdapter
    from .devices import Device

RECORD_TYPES = ("all", "time", "alarm", "manual")
ADAPTER = web.AppKey("gb28181_adapter", object)


def device_resource(gw: Gateway, dev: Device | None, device_id: str) -> Resource:
    """A device as the gate sees it: the unit and district its channels share, their highest
    security level. Channels of several units make a unit no department matches, so only roles
    not scoped to a unit may manage such a device."""
    cams = [gw.camera_resource(cid) for cid in dev.channels] if dev is not None else []
    return Resource("device", device_id, _shared({c.unit for c in cams}), _shared({c.district for c in cams}),
                    max((c.security_level for c in cams), default=0), {"channels": len(cams)})


def _shared(values: set[str | None]) -> str | None:
    """The one value all channels have; several make a label that matches no subject's."""
    if len(values) > 1:
        return "mixed:" + ",".join(sorted(map(str, values)))
    return next(iter(values), None)


def device_json(adapter: GbAdapter, dev: Device, manage_it: bool) -> dict[str, Any]:
    info = dev.info
    out: dict[str, Any] = {
        "id": dev.id, "name": info.get("devicename") or None, "manufacturer": info.get("manufacturer") or None,
        "model": info.get("model") or None, "firmware": info.get("firmware") or None,
        "online": dev.online, "registered": dev.registered, "transport": dev.peer.transport,
        "gb_version": dev.gb_version or None, "expires": dev.expires, "registered_at": _iso(dev.registered_at),
        "expires_at": _iso(dev.expires_at), "last_keepalive": _iso(dev.last_keepalive),
        "channel_count": len(dev.channels), "settings": dev.settings.to_dict(),
        "effective": adapter.server.settings(dev.id).to_dict(),
    }
    if manage_it:
        host, port = dev.peer.addr
        out["remote"] = {"host": host, "port": port, "contact": dev.contact}
    return out


def _iso(ts: float) -> str | None:
    return iso(datetime.fromtimestamp(ts, UTC)) if ts else None


def _adapter(request: web.Request) -> GbAdapter:
    return request.app[ADAPTER]  # type: ignore[return-value]


async def _gate(request: web.Request, action: Action, device_id: str, **kw: Any) -> Device:
    """Ask the gate (audited), then: 404 for an unknown device, 403 for a refusal."""
    gw, adapter = gateway_of(request), _adapter(request)
    dev = adapter.server.devices.get(device_id)
    decision = await gw.policy.authorize(http_access(request, action, device_resource(gw, dev, device_id), **kw))
    if dev is None:
        raise HttpError(404, "not_found", f"no GB/T 28181 device {device_id!r}")
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    return dev


def _may_manage(request: web.Request, resource: Resource) -> bool:
    return gateway_of(request).policy.decide(http_access(request, Action.MANAGE, resource)).allowed


async def _audit(request: web.Request, action: str, device_id: str, reason: str, **extra: Any) -> None:
    subject = subject_of(request)
    await gateway_of(request).audit.record(actor=subject.id, action=f"gb28181.{action}", resource=f"device:{device_id}",
                                           decision="allow", reason=reason, address=subject.address,
                                           request_id=request.headers.get("X-Request-Id", "")[:64] or None,
                                           extra=extra or None)


async def list_devices(request: web.Request) -> web.Response:
    gw, adapter = gateway_of(request), _adapter(request)
    out = []
    for dev in sorted(adapter.server.devices.by_id.values(), key=lambda d: d.id):
        resource = device_resource(gw, dev, dev.id)
        if not await gw.policy.authorize(http_access(request, Action.LIST, resource, quiet=True)):
            continue
        out.append(device_json(adapter, dev, _may_manage(request, resource)))
    return json_response({"devices": out})


async def get_device(request: web.Request) -> web.Response:
    gw, adapter = gateway_of(request), _adapter(request)
    dev = await _gate(request, Action.LIST, request.match_info["id"])
    nodes = adapter.tree(dev.id)
    cameras = set(dev.channels) | {n.id for n in nodes if n.kind in STREAMABLE}
    visible = {cid for cid in cameras if await gw.policy.authorize(
        http_access(request, Action.LIST, gw.camera_resource(cid), quiet=True))}
    channels = [{**camera_json(gw, ch), "kind": ch.extra.get("kind"), "ptz_type": ch.extra.get("ptz_type") or None}
                for cid, ch in sorted(dev.channels.items()) if cid in visible]
    tree = [{"id": n.id, "name": n.name, "kind": n.kind, "parent_id": n.parent_id,
             "business_group_id": n.business_group_id, "civil_code": n.civil_code, "parental": n.parental,
             "conflict": bool(n.extra.get("conflict"))}
            for n in nodes if n.id in visible or n.id not in cameras]
    out = device_json(adapter, dev, _may_manage(request, device_resource(gw, dev, dev.id)))
    return json_response({**out, "channels": channels, "tree": tree})


async def device_status(request: web.Request) -> web.Response:
    adapter = _adapter(request)
    dev = await _gate(request, Action.LIST, request.match_info["id"])
    try:
        return json_response(await manage.status(adapter, dev.id))
    except DeviceOffline:
        raise HttpError(409, "device_offline", f"device {dev.id} is offline") from None
    except TimeoutError:
        raise HttpError(504, "device_timeout", f"device {dev.id} did not answer DeviceStatus within "
                                               f"{adapter.cfg.request_timeout:g} s") from None
    except (DeviceRefused, ConnectionError, OSError) as exc:
        raise HttpError(502, "device_error", f"device {dev.id}: {query_failure(exc)}") from None


async def sync_catalog(request: web.Request) -> web.Response:
    adapter = _adapter(request)
    dev = await _gate(request, Action.MANAGE, request.match_info["id"])
    if not dev.online:
        raise HttpError(409, "device_offline", f"device {dev.id} is offline")
    result = await adapter.sync_catalog(dev.id, prune=True)
    await _audit(request, "catalog.sync", dev.id, result.error or "synchronised", **result.to_dict())
    if result.error is not None:
        raise HttpError(504, "device_timeout", f"catalog of {dev.id}: {result.error}")
    return json_response(result.to_dict())


async def delete_device(request: web.Request) -> web.Response:
    adapter = _adapter(request)
    dev = await _gate(request, Action.MANAGE, request.match_info["id"])
    try:
        removed = await manage.forget(adapter, dev.id)
    except UnknownDevice:  # deleted meanwhile by another request
        raise HttpError(404, "not_found", f"no GB/T 28181 device {dev.id!r}") from None
    await _audit(request, "device.delete", dev.id, f"forgotten with {removed} channels", channels=removed)
    return json_response({"id": dev.id, "deleted": True, "channels": removed})


async def patch_settings(request: web.Request) -> web.Response:
    adapter = _adapter(request)
    body = await json_object(request)
    dev = await _gate(request, Action.MANAGE, request.match_info["id"])
    try:
        eff = await manage.update_settings(adapter, dev.id, body)
    except SettingsError as exc:
        raise HttpError(400, "bad_request", str(exc), field=exc.field) from None
    except UnknownDevice:
        raise HttpError(404, "not_found", f"no GB/T 28181 device {dev.id!r}") from None
    await _audit(request, "device.settings", dev.id, "settings changed", changed=body, settings=dev.settings.to_dict())
    return json_response({"id": dev.id, "settings": dev.settings.to_dict(), "effective": eff.to_dict()})


def _time(request: web.Request, name: str) -> datetime:
    value = request.query.get(name, "")
    if not value:
        raise HttpError(400, "bad_request", f"{name}: required (ISO 8601 or Unix seconds)", field=name)
    try:
        return parse_time(value)
    except (ValueError, OverflowError, OSError):
        raise HttpError(400, "bad_request", f"{name}: expected ISO 8601 or Unix seconds", field=name) from None


async def channel_records(request: web.Request) -> web.Response:
    gw, adapter = gateway_of(request), _adapter(request)
    cid = request.match_info["cid"]
    start, end = _time(request, "start"), _time(request, "end")
    if end <= start:
        raise HttpError(400, "bad_request", "end: must be after start", field="end")
    kind = request.query.get("type", "all").lower()
    if kind not in RECORD_TYPES:
        raise HttpError(400, "bad_request", f"type: one of {', '.join(RECORD_TYPES)}", field="type")
    decision = await gw.policy.authorize(http_access(request, Action.VIEW_PLAYBACK, gw.camera_resource(cid),
                                                     window=(start, end), detail={"record_type": kind}))
    if not adapter.owns(cid):
        raise HttpError(404, "not_found", f"no GB/T 28181 channel {cid!r}")
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    dev = adapter.server.devices.identify(cid)  # the channel's device, by the owner index
    if dev is None or not dev.online:
        raise HttpError(409, "device_offline", f"the device of channel {cid} is offline")
    try:
        found = await adapter.record_info(cid, start, end, kind)
    except TimeoutError:
        raise HttpError(504, "device_timeout", f"the device of channel {cid} did not accept RecordInfo") from None
    except (DeviceRefused, ConnectionError, OSError) as exc:
        raise HttpError(502, "device_error", f"channel {cid}: {query_failure(exc)}") from None
    if not found.packets:
        raise HttpError(504, "device_timeout", f"the device of channel {cid} sent no RecordInfo answer within "
                                               f"{adapter.cfg.catalog_timeout:g} s")
    return json_response({"channel_id": cid, "start": iso(start), "end": iso(end), "type": kind,
                          "complete": found.complete, "sum_num": found.sum_num,
                          "records": [r.to_dict() for r in found.records]})


def add_routes(gw: Gateway, adapter: GbAdapter) -> None:
    gw.app[ADAPTER] = adapter
    api = gw.api
    for name, schema in (("GbDevice", DEVICE), ("GbDeviceDetail", DEVICE_DETAIL)):
        api.schema(name, schema)
    base = "/api/gb28181/devices"
    api.route("GET", base, list_devices, summary="GB/T 28181 devices the caller may list", tag="gb28181",
              response={"type": "object", "properties": {"devices": {"type": "array",
                                                                      "items": {"$ref": "#/components/schemas/GbDevice"}}}})
    api.route("GET", base + "/{id}", get_device, summary="One device with its channels and catalog tree",
              tag="gb28181", response={"$ref": "#/components/schemas/GbDeviceDetail"})
    api.route("GET", base + "/{id}/status", device_status, summary="Live DeviceStatus query (504 if unanswered)",
              tag="gb28181", response=STATUS)
    api.route("POST", base + "/{id}/catalog", sync_catalog, summary="Catalog sync now; answers the counts",
              tag="gb28181", response=SYNC)
    api.route("DELETE", base + "/{id}", delete_device, summary="Forget a device and its channels (it may register "
              "again)", tag="gb28181", response={"type": "object"})
    api.route("PATCH", base + "/{id}/settings", patch_settings, summary="Per-device media transport, charset, "
              "keepalive and time zone (null: back to the configuration)", tag="gb28181", body=SETTINGS_BODY,
              response=SETTINGS_RESULT)
    api.route("GET", "/api/gb28181/channels/{cid}/records", channel_records,
              summary="RecordInfo on the device by time range and type (VIEW_PLAYBACK for that window)",
              tag="gb28181", response=RECORDS,
              query={"start": {"type": "string", "description": "ISO 8601 or Unix seconds (naive: UTC)"},
                     "end": {"type": "string"}, "type": {"type": "string", "enum": list(RECORD_TYPES)}})
