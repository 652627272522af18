"""The ``[recording]`` section (R9): where footage goes, how long it stays, who yields first."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import ConfigError, section

RETENTION_FLOOR_DAYS = 30  # QD 19(7), WX 28: footage kept at least 30 days
MAX_INTERNAL_SPEED = 64.0  # the gateway's own readers (speed 0: as fast as they take it)


@section("recording")
@dataclass(slots=True)
class RecordingConfig:
    path: str = ""  # empty → <node.data_dir>/recordings
    cameras: list[str] = field(default_factory=list)  # channel ids to record, or ["all"]; empty → none
    schedules: list[str] = field(default_factory=list)  # "cid=HH:MM-HH:MM" (gateway local time); unlisted → continuous
    segment_seconds: float = 60.0
    retention_days: int = RETENTION_FLOOR_DAYS
    low_priority: list[str] = field(default_factory=list)  # refused first when storage runs short
    min_free_bytes: int = 2 * 1024**3  # below this: alert and refuse low-priority cameras
    quota_bytes: int = 0  # 0 → no quota; otherwise treated like the free-space floor
    sweep_interval: float = 600.0  # seconds between expiry sweeps and storage checks
    fsync: bool = True  # fsync each segment (and its directory) at close
    playback_max_speed: float = 16.0  # viewing is paced; a copy at disk speed is an export (R11)
    playback_max_hours: float = 24.0  # the longest span one playback request may cover
    redact_every: int = 5  # public-release redaction: detect on every k-th frame
    source_audit_kinds: list[str] = field(default_factory=lambda: ["gb28181"])  # adapters audited for 30 days

    def __post_init__(self) -> None:
        if self.retention_days < RETENTION_FLOOR_DAYS:
            raise ConfigError(
                f"recording.retention_days: {self.retention_days} is below the {RETENTION_FLOOR_DAYS}-day floor "
                "that QD 19(7) and WX 28 set (R9); it cannot be lowered"
            )
        if not 0.2 <= self.segment_seconds <= 600:
            raise ConfigError(f"recording.segment_seconds: expected 0.2…600, got {self.segment_seconds}")
        if not 1 <= self.playback_max_speed <= MAX_INTERNAL_SPEED:
            raise ConfigError(f"recording.playback_max_speed: expected 1…{MAX_INTERNAL_SPEED:g}, "
                              f"got {self.playback_max_speed}")
        if not 0 < self.playback_max_hours <= 24 * 31:
            raise ConfigError(f"recording.playback_max_hours: expected more than 0 and at most 744, "
                              f"got {self.playback_max_hours}")
        if self.redact_every < 1:
            raise ConfigError(f"recording.redact_every: expected ≥ 1, got {self.redact_every}")
        for entry in self.schedules:
            parse_schedule(entry)

    def records(self, channel_id: str) -> bool:
        return "all" in self.cameras or channel_id in self.cameras


def parse_schedule(entry: str) -> tuple[str, int, int]:
    """``"cam-1=08:00-20:00"`` → (channel id, start minute, end minute); end < start spans midnight."""
    try:
        cid, _, window = entry.partition("=")
        start, _, end = window.partition("-")
        minutes = [int(h) * 60 + int(m) for h, m in (t.strip().split(":") for t in (start, end))]
        if not cid.strip() or not all(0 <= x < 24 * 60 for x in minutes):
            raise ValueError
    except ValueError:
        raise ConfigError(f"recording.schedules: expected 'camera=HH:MM-HH:MM', got {entry!r}") from None
    return cid.strip(), minutes[0], minutes[1]
