"""R9 (QD 19(7), WX 28) and R10 (QD 20(3)): a 30-day retention floor configuration cannot lower,
no deletion inside retention by anyone, expiry only outside retention and never under a lock,
and short storage refuses low-priority cameras instead of deleting footage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
import shutil
import time

import aiohttp
import pytest

import gateway.recording  # noqa: F401 - registers [recording]
from gateway.config import Config, ConfigError
from gateway.policy import Subject
from gateway.recording.index import CLOSED, EXPIRED, SegmentRow
from gateway.recording.retention import RetentionRefused
from gateway.recording.web import PART
from tests.conftest import auth, synthetic
from tests.people import trail
from tests.test_recording_support import add_segment, encode, gray_pictures

ADMIN = Subject(id="user:admin", roles=frozenset({"system_admin"}), clearance=9)
SECOND_ADMIN = Subject(id="user:admin-2", roles=frozenset({"system_admin"}), clearance=9)


def test_r9_retention_below_30_days_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"recording\.retention_days.*30-day floor.*QD 19\(7\).*WX 28"):
        Config({"recording": {"retention_days": 29}}, env={})
    with pytest.raises(ConfigError, match=r"recording\.retention_days"):
        Config({}, env={"VSGW_RECORDING_RETENTION_DAYS": "7"})
    assert Config({"recording": {"retention_days": 30}}, env={}).get(gateway.recording.RecordingConfig).retention_days == 30


async def _old_and_new(gw, camera: str = "cam-r") -> tuple[SegmentRow, SegmentRow, SegmentRow]:  # noqa: ANN001
    units = encode(gray_pictures(10))
    now = datetime.now(UTC)
    old = await add_segment(gw, camera, now - timedelta(days=40), units)
    locked = await add_segment(gw, camera, now - timedelta(days=39), units, old.hash)
    recent = await add_segment(gw, camera, now - timedelta(days=29, hours=23), units, locked.hash)
    return old, locked, recent


async def _status(gw, row_id: int) -> str:  # noqa: ANN001
    async with gw.db.session() as s:
        return (await s.get(SegmentRow, row_id)).status


async def test_r9_admin_delete_inside_retention_refused_citing_articles(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(storage={"url": db_url})
    part = gw.app[PART]
    old, locked, recent = await _old_and_new(gw)
    start, end = recent.start - timedelta(seconds=1), datetime.now(UTC)
    async with aiohttp.ClientSession(headers=auth()) as http:
        url = f"http://127.0.0.1:{gw.http_port}/api/recordings/cam-r"
        async with http.delete(url, params={"start": start.isoformat(), "end": end.isoformat()}) as r:
            body = await r.json()
            assert r.status == 409 and body["error"] == "retention"
            assert "QD 19(7)" in body["message"] and "QD 20(3)" in body["message"] and "WX 28" in body["message"]
    with pytest.raises(RetentionRefused):  # the system administrator is refused too
        await part.retention.delete(ADMIN, "cam-r", recent.start, recent.end)
    assert (part.root / recent.path).exists() and await _status(gw, recent.id) == CLOSED
    assert await trail(gw, action="recording.delete", decision="deny")
    assert gw.metrics.value("vsgw_recording_rejected_total", reason="delete_inside_retention") == 2
    # outside retention and unlocked: the delete goes through, the row stays for the chain
    assert await part.retention.delete(ADMIN, "cam-r", old.start, old.end) == 1
    assert not (part.root / old.path).exists() and await _status(gw, old.id) == EXPIRED


async def test_r9_sweep_expires_only_outside_retention_and_not_under_lock(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(storage={"url": db_url})
    part = gw.app[PART]
    old, locked, recent = await _old_and_new(gw)
    lock = await part.locks.lock(ADMIN, "cam-r", locked.start, locked.end, "case 2026-117: hit and run", "2026-117")
    with pytest.raises(RetentionRefused, match="evidence lock"):
        await part.retention.delete(ADMIN, "cam-r", locked.start, locked.end)
    assert await part.retention.sweep() == 1
    assert [await _status(gw, r.id) for r in (old, locked, recent)] == [EXPIRED, CLOSED, CLOSED]
    assert (part.root / locked.path).exists() and (part.root / recent.path).exists()
    await part.locks.request_release(ADMIN, lock.id, "case closed")
    assert await part.retention.sweep() == 0  # a requested release is not a release: the lock holds
    await part.locks.confirm_release(SECOND_ADMIN, lock.id)
    assert await part.retention.sweep() == 1
    assert await _status(gw, locked.id) == EXPIRED and await _status(gw, recent.id) == CLOSED
    assert await trail(gw, action="recording.lock", decision="allow")
    assert await trail(gw, action="recording.unlock", decision="allow")


async def test_r9_short_storage_alerts_and_refuses_low_priority_camera_not_footage(make_gateway) -> None:  # noqa: ANN001
    free = shutil.disk_usage("/tmp").free
    gw = await make_gateway(
        cameras=[synthetic("hi"), synthetic("lo")],
        recording={"cameras": ["all"], "segment_seconds": 1.0, "low_priority": ["lo"], "min_free_bytes": free * 2,
                   "fsync": False},
    )
    part = gw.app[PART]
    assert part.guard.state == "short"
    assert gw.metrics.value("vsgw_recording_storage_alerts_total", state="short") == 1
    deadline = asyncio.get_running_loop().time() + 15
    while "hi" not in part.recorder.live or gw.metrics.value("vsgw_recording_refused_total", camera="lo") < 1:
        assert asyncio.get_running_loop().time() < deadline, "recording of 'hi' did not start"
        await asyncio.sleep(0.1)
    assert "lo" not in part.recorder.live
    assert "vsgw_recording_storage_short 1" in gw.metrics.render()
    async with aiohttp.ClientSession(headers=auth()) as http:
        async with http.get(f"http://127.0.0.1:{gw.http_port}/api/recordings/status") as r:
            status = await r.json()
    assert status["storage"]["state"] == "short" and "hi" in status["recording"]


def test_recording_schedules_parse_and_span_midnight() -> None:
    from gateway.recording.config import RecordingConfig
    from gateway.recording.recorder import Recorder

    with pytest.raises(ConfigError, match=r"recording\.schedules: expected 'camera=HH:MM-HH:MM'"):
        Config({"recording": {"schedules": ["cam-1=8-20"]}}, env={})
    cfg = RecordingConfig(cameras=["all"], schedules=["day=08:00-20:00", "night=22:00-06:00"])
    rec = Recorder(None, cfg, Path("."), None)  # type: ignore[arg-type] - only the schedule is used
    at = lambda hh, mm: time.mktime((2026, 11, 23, hh, mm, 0, 0, 0, -1))  # noqa: E731 - local time
    assert rec.scheduled("day", at(8, 0)) and not rec.scheduled("day", at(20, 0)) and not rec.scheduled("day", at(3, 0))
    assert rec.scheduled("night", at(23, 59)) and rec.scheduled("night", at(5, 59)) and not rec.scheduled("night", at(12, 0))
    assert rec.scheduled("anything-else", at(12, 0)) and cfg.records("anything-else")
