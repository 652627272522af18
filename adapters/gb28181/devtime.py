"""Device-local time: GB/T 28181 devices write times without a zone (``YYYY-MM-DDTHH:MM:SS``) in
their own local time — RecordInfo ranges both ways, alarm and device times. The gateway works in
aware UTC; these two functions cross that line with the device's zone (``[sip] time_zone``, per
device ``time_zones``)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

FORMAT = "%Y-%m-%dT%H:%M:%S"


def to_device(moment: datetime, zone: ZoneInfo) -> str:
    """An instant → the device's wall-clock text. A naive ``moment`` is taken as UTC (the gateway's
    convention), never as the gateway host's local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime(FORMAT)


def from_device(text: str, zone: ZoneInfo) -> datetime:
    """The device's time text → aware UTC. Zone-less text is the device's wall clock; text with an
    offset (a few 2022 devices add one) keeps it. ValueError on anything else."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
