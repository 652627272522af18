"""The ``[cascade]`` section: the superior platforms vsgw registers to as a GB/T 28181 lower platform.

Each ``[[cascade.superiors]]`` table names one superior (its SIP server ID, domain, address and the
digest password it gave us), our ID towards it, the timers, and the subject it is to the gate: a
machine client of a platform tier with a clearance, optionally of a unit, with share lists that
narrow what the gate lets it list (``include`` / ``exclude``: channel IDs or ``fnmatch`` patterns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config import ConfigError, build, section
from gateway.policy.gate import TIER_CEILING

CHARSETS = ("GB18030", "GB2312", "GBK", "UTF-8")


def gb_id(value: str) -> bool:
    return len(value) == 20 and value.isascii() and value.isdigit()


@dataclass(slots=True)
class Superior:
    server_id: str  # the superior's 20-digit SIP server ID
    host: str
    password: str = field(repr=False)
    local_id: str = ""  # our 200-type ID towards it; empty = [cascade] local_id
    port: int = 5060
    domain: str = ""  # empty = the first 10 digits of server_id (also the digest realm)
    transport: str = "udp"  # udp | tcp
    name: str = ""  # shown on the API; empty = server_id
    local_host: str = "127.0.0.1"  # the address our SIP endpoint for this superior binds (and puts in Contact)
    local_port: int = 0  # 0 = any free port
    register_expires: int = 3600
    keepalive_interval: float = 60.0
    keepalive_misses: int = 3  # unanswered keepalives in a row that mean the superior is gone
    request_timeout: float = 8.0  # one non-INVITE transaction (retransmissions inside)
    retry_min: float = 60.0  # a failed registration is retried after this long, doubling per failure
    retry_max: float = 600.0
    charset: str = "GB18030"  # of the MANSCDP bodies we send
    time_zone: str = "Asia/Shanghai"  # the superior reads and writes zone-less local times (DeviceTime, RecordInfo)
    tier: str = "sharing"  # the superior as a subject of the gate: platform tier, clearance, unit
    clearance: int = 0
    unit: str = ""
    include: list[str] = field(default_factory=list)  # empty: every camera the gate lets it list
    exclude: list[str] = field(default_factory=list)
    catalog_items_per_packet: int = 20
    max_body_bytes: int = 4096  # one Catalog/RecordInfo packet's body at most (UDP: keep it under the path MTU)

    @property
    def realm(self) -> str:
        return self.domain or self.server_id[:10]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def label(self) -> str:
        return self.name or self.server_id

    def shares(self, channel_id: str) -> bool:
        """The share list's say on a camera the gate allows: in ``include`` (when given), not in ``exclude``."""
        if self.include and not any(fnmatchcase(channel_id, p) for p in self.include):
            return False
        return not any(fnmatchcase(channel_id, p) for p in self.exclude)

    def check(self, where: str) -> None:
        for name in ("server_id", "local_id"):
            if not gb_id(getattr(self, name)):
                raise ConfigError(f"{where}.{name}: expected 20 digits")
        if not self.host:
            raise ConfigError(f"{where}.host: required")
        if not self.password:
            raise ConfigError(f"{where}.password: required (digest)")
        if self.transport not in ("udp", "tcp"):
            raise ConfigError(f"{where}.transport: expected udp or tcp")
        if not 0 < self.port < 65536 or not 0 <= self.local_port < 65536:
            raise ConfigError(f"{where}.port/local_port: expected 1-65535 (local_port 0 = any)")
        if self.charset.upper() not in CHARSETS:
            raise ConfigError(f"{where}.charset: expected one of {', '.join(CHARSETS)}")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}.time_zone: unknown time zone {self.time_zone!r}") from None
        if self.tier not in TIER_CEILING:
            raise ConfigError(f"{where}.tier: expected one of {', '.join(sorted(TIER_CEILING))}")
        if not 0 <= self.clearance <= 5:
            raise ConfigError(f"{where}.clearance: expected 0-5")
        if self.register_expires < 60 or self.keepalive_interval <= 0 or self.keepalive_misses < 1:
            raise ConfigError(f"{where}: expected register_expires >= 60, keepalive_interval > 0, keepalive_misses >= 1")
        if not 0 < self.retry_min <= self.retry_max or self.request_timeout <= 0:
            raise ConfigError(f"{where}: expected 0 < retry_min <= retry_max and request_timeout > 0")
        if self.catalog_items_per_packet < 1 or self.max_body_bytes < 1024:
            raise ConfigError(f"{where}: expected catalog_items_per_packet >= 1 and max_body_bytes >= 1024")


@section("cascade")
@dataclass(slots=True)
class CascadeConfig:
    local_id: str = ""  # our 20-digit platform ID (type 200) towards every superior that names none
    name: str = "vsgw"  # DeviceName in our DeviceInfo answers
    superiors: list[dict] = field(default_factory=list)  # [[cascade.superiors]] tables, see Superior
    parsed: list[Superior] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.local_id and not gb_id(self.local_id):
            raise ConfigError("cascade.local_id: expected 20 digits")
        seen: set[str] = set()
        for i, entry in enumerate(self.superiors):
            where = f"cascade.superiors[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: expected a table")
            sup = build(Superior, entry, where)
            sup.local_id = sup.local_id or self.local_id
            sup.charset = sup.charset.upper()
            sup.check(where)
            if sup.server_id in seen:
                raise ConfigError(f"{where}.server_id: {sup.server_id} is listed twice")
            seen.add(sup.server_id)
            self.parsed.append(sup)
