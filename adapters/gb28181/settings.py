"""Per-device GB/T 28181 settings: media transport, body charset, keepalive timing, time zone.

Three layers, the most specific set value wins: what the HTTP API stored for the device, then the
device's ``[[sip.devices]]`` entry (or the older ``charsets`` / ``time_zones`` lists), then the
``[sip]`` defaults. A field left unset (None) falls through to the next layer. Validation here is
shared by the config file and the API, so both refuse the same values with the field's name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TRANSPORTS = ("udp", "tcp-passive", "tcp-active")
CHARSETS = {"gb18030": "GB18030", "utf-8": "UTF-8", "utf8": "UTF-8"}
INTERVAL_MIN, INTERVAL_MAX = 1.0, 86400.0  # seconds between the keepalives a device is expected to send


class SettingsError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """One layer of settings; None means "not set here"."""

    media_transport: str | None = None  # the SDP of our INVITE: udp | tcp-passive | tcp-active
    charset: str | None = None  # how the device's MANSCDP bodies are decoded: GB18030 | UTF-8 (None: detect)
    keepalive_interval: float | None = None  # seconds between the device's keepalives
    keepalive_timeout: float | None = None  # offline this long after the last keepalive (None: interval × misses)
    time_zone: str | None = None  # the device's local time (RecordInfo, the REGISTER 200's Date)

    def over(self, lower: DeviceSettings) -> DeviceSettings:
        """This layer on top of ``lower``."""
        return DeviceSettings(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None
                                 else getattr(lower, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass(frozen=True, slots=True)
class Effective:
    """The settings a device runs with, every field resolved."""

    media_transport: str
    charset: str | None
    keepalive_interval: float
    keepalive_timeout: float
    time_zone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(DeviceSettings))


def validate(data: dict[str, Any], where: str = "") -> DeviceSettings:
    """A layer from untrusted input (an API body, a config table); SettingsError names the field."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise SettingsError(where + unknown[0], f"unknown setting; known: {', '.join(FIELDS)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        values[name] = None if value is None else _check(name, value, where + name)
    out = DeviceSettings(**values)
    interval, timeout = out.keepalive_interval, out.keepalive_timeout
    if interval is not None and timeout is not None and timeout <= interval:
        raise SettingsError(where + "keepalive_timeout", "must be longer than keepalive_interval")
    return out


def _check(name: str, value: Any, where: str) -> Any:
    if name == "media_transport":
        if value not in TRANSPORTS:
            raise SettingsError(where, f"expected one of {', '.join(TRANSPORTS)}")
        return value
    if name == "charset":
        if not isinstance(value, str) or value.lower() not in CHARSETS:
            raise SettingsError(where, "expected GB18030 or UTF-8")
        return CHARSETS[value.lower()]
    if name == "time_zone":
        if not isinstance(value, str):
            raise SettingsError(where, "expected a time zone name such as Asia/Shanghai")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(where, f"unknown time zone {value[:64]!r} (expected e.g. Asia/Shanghai)") from None
        return value
    limit = INTERVAL_MAX * 3 if name == "keepalive_timeout" else INTERVAL_MAX
    if isinstance(value, bool) or not isinstance(value, int | float) or not INTERVAL_MIN <= value <= limit:
        raise SettingsError(where, f"expected seconds between {INTERVAL_MIN:g} and {limit:g}")
    return float(value)
