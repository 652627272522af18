"""The bodies of our answers about the platform itself (DeviceInfo, DeviceStatus) and of RecordInfo.

GB/T 28181 times carry no zone: the superior reads and writes its local time (``time_zone``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

Fields = list[tuple[str, object]]
MODEL = "vsgw"


def device_info(name: str, version: str, channels: int) -> Fields:
    """``Channel`` is how many cameras this superior may list, not how many the platform holds."""
    return [("Result", "OK"), ("DeviceName", name), ("Manufacturer", "vsgw"), ("Model", MODEL),
            ("Firmware", version), ("Channel", channels)]


def device_status(zone: ZoneInfo) -> Fields:
    return [("Result", "OK"), ("Online", "ONLINE"), ("Status", "OK"),
            ("DeviceTime", datetime.now(zone).strftime("%Y-%m-%dT%H:%M:%S"))]


def local_time(text: str, zone: ZoneInfo) -> datetime:
    """A MANSCDP time (``2024-05-01T12:00:00``, zone-less = the superior's zone) as an aware datetime."""
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def record_items(channel_id: str, name: str, ranges: list[tuple[datetime, datetime]], zone: ZoneInfo) -> list[Fields]:
    """One ``Item`` per recorded range; the file path names the channel and range, never a disk path."""
    out = []
    for start, end in ranges:
        a, b = start.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"), end.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
        out.append([("DeviceID", channel_id), ("Name", name), ("FilePath", f"{channel_id}/{a}"), ("StartTime", a),
                    ("EndTime", b), ("Secrecy", 0), ("Type", "time")])
    return out
