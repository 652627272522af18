"""The ``[sip]`` section: the gateway's GB/T 28181 SIP server (env ``VSGW_SIP_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config import ConfigError, section

from .settings import DeviceSettings, Effective, SettingsError, validate


@section("sip")
@dataclass(slots=True)
class SipConfig:
    enabled: bool = False  # the SIP server listens only when enabled (the demo turns it on)
    host: str = "127.0.0.1"
    port: int = 5060  # UDP and TCP; 0 = any free port (tests)
    media_host: str = ""  # address put in SDP c= (devices must reach it); empty = host
    server_id: str = "34020000002000000001"
    domain: str = ""  # empty = the first 10 digits of server_id (also the digest realm)
    password: str = ""  # the domain password (digest), required when accept_unknown
    device_passwords: list[str] = field(default_factory=list)  # "deviceid:password" per device
    accept_unknown: bool = True  # devices not listed in device_passwords register with the domain password
    charsets: list[str] = field(default_factory=list)  # "deviceid:gbk" per-device body charset
    time_zone: str = "Asia/Shanghai"  # devices send and expect zone-less local times (RecordInfo)
    time_zones: list[str] = field(default_factory=list)  # "deviceid:Area/City" per device
    # [[sip.devices]] tables: id plus any of media_transport, charset, keepalive_interval,
    # keepalive_timeout, time_zone (:mod:`.settings`); they win over charsets/time_zones
    devices: list[dict] = field(default_factory=list)
    register_expires_min: int = 60  # a shorter non-zero Expires is answered 423 Interval Too Brief
    register_expires_max: int = 86400  # a longer one is granted this much (the 200's Expires says so)
    # a request in a registered device's name from anywhere but the transport it registered over:
    # "reject" (403) or "challenge" (401; accepted with a fresh digest, the binding stays)
    foreign_source: str = "reject"
    keepalive_interval: float = 60.0
    keepalive_misses: int = 3
    catalog_timeout: float = 10.0  # multi-packet Catalog/RecordInfo collection
    request_timeout: float = 8.0  # non-INVITE transaction (T1 retransmissions inside)
    invite_timeout: float = 10.0  # INVITE with no answer at all (not even 100 Trying): give up
    invite_answer_timeout: float = 30.0  # after a 1xx: wait this long for the final answer, then CANCEL
    media_transport: str = "udp"  # udp | tcp-passive | tcp-active
    silence_timeout: float = 6.0  # no media for this long → BYE and re-INVITE
    reinvites: int = 3  # attempts without media after the first one; then the stream stops ("no media")
    reinvite_backoff: float = 1.0  # seconds before the first re-INVITE, doubling for each further one
    download_speed: int = 4  # a=downloadspeed of a download from the device (an export), 1…16
    playback_pause_limit: float = 300.0  # a device playback paused longer than this is ended
    rtp_low: int = 30000
    rtp_high: int = 30999  # rtp_low = rtp_high = 0: any free port (tests)
    _entries: dict[str, DeviceSettings] = field(default_factory=dict, init=False, repr=False)

    @property
    def realm(self) -> str:
        return self.domain or self.server_id[:10]

    def password_for(self, device_id: str) -> str | None:
        """The device's password, the domain one, or None when the device may not register."""
        for entry in self.device_passwords:
            dev, _, pw = entry.partition(":")
            if dev == device_id:
                return pw
        return self.password if self.accept_unknown else None

    def charset_for(self, device_id: str) -> str | None:
        return self.device_layer(device_id).charset

    def zone_for(self, device_id: str) -> ZoneInfo:
        return ZoneInfo(self.device_layer(device_id).time_zone or self.time_zone)

    def device_layer(self, device_id: str) -> DeviceSettings:
        """What the configuration sets for one device: its ``[[sip.devices]]`` entry over the lists."""
        charset = next((e.partition(":")[2] for e in self.charsets if e.partition(":")[0] == device_id), None)
        zone = next((e.partition(":")[2] for e in self.time_zones if e.partition(":")[0] == device_id), None)
        listed = DeviceSettings(charset=charset, time_zone=zone)
        entry = self._entries.get(device_id)
        return entry.over(listed) if entry is not None else listed

    def resolve(self, device_id: str, stored: DeviceSettings | None = None) -> Effective:
        """The settings the device runs with: ``stored`` (the API's) over the configuration's."""
        layer = stored.over(self.device_layer(device_id)) if stored is not None else self.device_layer(device_id)
        interval = layer.keepalive_interval or self.keepalive_interval
        return Effective(media_transport=layer.media_transport or self.media_transport, charset=layer.charset,
                         keepalive_interval=interval,
                         keepalive_timeout=layer.keepalive_timeout or interval * self.keepalive_misses,
                         time_zone=layer.time_zone or self.time_zone)

    def _parse_devices(self) -> None:
        for i, entry in enumerate(self.devices):
            where = f"sip.devices[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: expected a table with id and settings")
            rest = dict(entry)
            device_id = rest.pop("id", None)
            if not isinstance(device_id, str) or not device_id:
                raise ConfigError(f"{where}.id: required (the device's 20-digit ID)")
            if device_id in self._entries:
                raise ConfigError(f"{where}.id: {device_id} is listed twice")
            try:
                self._entries[device_id] = validate(rest, where=f"{where}.")
            except SettingsError as exc:
                raise ConfigError(str(exc)) from None

    def __post_init__(self) -> None:
        """Every REGISTER is digest-checked: no configuration lets a device in without a password."""
        if self.enabled and self.accept_unknown and not self.password:
            raise ConfigError("sip.password: required (digest) while sip.accept_unknown = true")
        if self.enabled and not self.accept_unknown and not self.device_passwords:
            raise ConfigError("sip.device_passwords: no device could register (accept_unknown = false)")
        if any(not entry.partition(":")[2] for entry in self.device_passwords):
            raise ConfigError("sip.device_passwords: expected \"deviceid:password\" with a non-empty password")
        zones = [("time_zone", self.time_zone)] + [("time_zones", e.partition(":")[2]) for e in self.time_zones]
        for name, zone in zones:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"sip.{name}: unknown time zone {zone!r} (expected e.g. Asia/Shanghai)") from None
        self._parse_devices()
        if len(self.server_id) != 20 or not self.server_id.isdigit():
            raise ConfigError("sip.server_id: expected 20 digits")
        if self.foreign_source not in ("reject", "challenge"):
            raise ConfigError("sip.foreign_source: expected reject or challenge")
        if not 0 < self.register_expires_min <= self.register_expires_max:
            raise ConfigError("sip.register_expires_min/max: expected 0 < min <= max")
        if not 1 <= self.download_speed <= 16:
            raise ConfigError("sip.download_speed: expected 1…16")
        if self.media_transport not in ("udp", "tcp-passive", "tcp-active"):
            raise ConfigError("sip.media_transport: expected udp, tcp-passive or tcp-active")
        if not (self.rtp_low == self.rtp_high == 0 or 0 < self.rtp_low <= self.rtp_high < 65536):
            raise ConfigError("sip.rtp_low/rtp_high: expected 0 < low <= high < 65536 (0/0 = any free port)")
