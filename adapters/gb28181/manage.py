"""Device management behind the HTTP API: forget a device, change its settings, ask its status (R1, R15).

Forgetting is durable (the store's rows go before the call returns) and not a ban: a device that
registers again comes back with a fresh catalog. Settings are the API's layer of
:mod:`.settings`; they take effect at once (charset, keepalive deadline; the media transport at the
next INVITE) and are written before the call returns.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .devtime import from_device
from .settings import FIELDS, DeviceSettings, Effective, SettingsError, validate

if TYPE_CHECKING:
    from .adapter import GbAdapter
    from .devices import Device

log = logging.getLogger(__name__)


class UnknownDevice(LookupError):
    pass


class DeviceOffline(ConnectionError):
    pass


def device(adapter: GbAdapter, device_id: str) -> Device:
    dev = adapter.server.devices.get(device_id)
    if dev is None:
        raise UnknownDevice(device_id)
    return dev


async def forget(adapter: GbAdapter, device_id: str) -> int:
    """Drop the device, its channels (from the registry too), its tree and its open dialogs;
    returns how many channels went."""
    dev = device(adapter, device_id)
    for inv in [i for i in adapter.player.dialogs.values() if i.dev.id == device_id]:
        adapter.player.dialogs.pop(inv.call_id, None)
        await inv.close("device deleted")
    channels = list(dev.channels)
    adapter.server.devices.forget(device_id)  # first: nothing arriving for it now is stored again
    adapter.forget_tree(device_id, channels)
    if adapter.store is not None:
        await adapter.store.delete(device_id)
    log.info("GB device %s deleted with %d channels", device_id, len(channels))
    return len(channels)


async def update_settings(adapter: GbAdapter, device_id: str, patch: dict[str, Any]) -> Effective:
    """Apply a partial update (a null field falls back to the configuration); SettingsError names
    the field at fault."""
    dev = device(adapter, device_id)
    given = validate(patch)
    merged = dev.settings.to_dict() | {name: getattr(given, name) for name in FIELDS if name in patch}
    layer = DeviceSettings(**merged)
    eff = adapter.cfg.resolve(device_id, layer)
    if eff.keepalive_timeout <= eff.keepalive_interval:
        raise SettingsError("keepalive_timeout", f"must be longer than keepalive_interval ({eff.keepalive_interval:g} s)")
    dev.settings = layer
    adapter.server.devices.configure(dev, eff)
    adapter.server.devices.on_record(dev, "settings")
    if adapter.store is not None:
        await adapter.store.flush()
    log.info("GB device %s settings: %s", device_id,
             ", ".join(f"{k}={v}" for k, v in layer.to_dict().items() if v is not None) or "configuration defaults")
    return eff


async def status(adapter: GbAdapter, device_id: str) -> dict[str, Any]:
    """A live DeviceStatus query; TimeoutError when the device does not answer in time."""
    dev = device(adapter, device_id)
    if not dev.online:
        raise DeviceOffline(device_id)
    timeout = adapter.cfg.request_timeout
    answer = await adapter.server.query(dev, "DeviceStatus", timeout=timeout)
    if answer.first is None:
        raise TimeoutError(f"device {device_id} did not answer DeviceStatus within {timeout:g} s")
    root = answer.first.root
    zone = adapter.server.settings(device_id).zone
    try:
        device_time = from_device(root.get("devicetime"), zone).isoformat().replace("+00:00", "Z")
    except ValueError:
        device_time = None
    alarms = root.find("alarmstatus")
    return {
        "id": device_id, "result": root.get("result") or None, "online": root.get("online") or None,
        "status": root.get("status") or None, "record": root.get("record") or None,
        "encode": root.get("encode") or None, "device_time": device_time,
        "alarms": [{"id": a.get("deviceid"), "status": a.get("dutystatus")}
                   for a in (alarms.findall("item") if alarms is not None else [])],
    }
