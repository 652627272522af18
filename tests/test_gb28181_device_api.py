"""The GB/T 28181 device-management HTTP API against the device simulator over real UDP sockets and
real HTTP (R1, R11, R15, R18): listing and detail with DeviceInfo, channels and the catalog tree,
live DeviceStatus, manual catalog sync, durable delete, record search under VIEW_PLAYBACK, and who
sees a device's address."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from gateway.app import Gateway
from gateway.policy import Resource

from .conftest import TOKEN, free_port, gateway_config
from .people import FAST_ARGON2, person, relative_grant, trail
from .test_gb28181_signalling import DEV, sip, start_sim, until

BASE = "/api/gb28181/devices"


async def call(gw: Gateway, method: str, path: str, token: str = TOKEN, headers: dict[str, str] | None = None,
               **kw: Any) -> tuple[int, Any, str]:
    headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    async with aiohttp.ClientSession() as http, http.request(
            method, f"http://127.0.0.1:{gw.http_port}{path}", headers=headers, **kw) as resp:
        text = await resp.text()
        return resp.status, await resp.json(content_type=None), text


async def registered(make_gateway, channels: int = 2, **sip_kw):
    gw = await make_gateway(sip=sip(**sip_kw), identity=FAST_ARGON2)
    sim = await start_sim(gw, channels=channels)
    await until(lambda: all(c in gw.registry.channels for c in sim.cfg.channel_ids()))
    await until(lambda: gw.gb28181.server.devices.get(DEV).info.get("model") == "gb-sim")
    return gw, sim


async def test_r1_device_list_and_detail_show_deviceinfo_channels_and_catalog_tree(make_gateway) -> None:
    gw, sim = await registered(make_gateway)
    try:
        status, body, _ = await call(gw, "GET", BASE)
        assert status == 200
        (dev,) = body["devices"]
        assert dev["id"] == DEV and dev["online"] and dev["registered"] and dev["transport"] == "udp"
        assert (dev["name"], dev["manufacturer"], dev["model"], dev["firmware"]) == ("模拟摄像机", "vsgw", "gb-sim", "1.0")
        assert dev["channel_count"] == 2 and dev["expires"] == 3600 and dev["gb_version"] == "3.0"
        assert dev["last_keepalive"].endswith("Z") and dev["expires_at"] > dev["registered_at"]
        assert dev["remote"] == {"host": "127.0.0.1", "port": sim.endpoint.port,
                                 "contact": f"<sip:{DEV}@127.0.0.1:{sim.endpoint.port}>"}  # the API token manages
        assert dev["effective"]["media_transport"] == "udp" and set(dev["settings"].values()) == {None}
        status, detail, _ = await call(gw, "GET", f"{BASE}/{DEV}")
        assert status == 200
        assert [c["id"] for c in detail["channels"]] == sim.cfg.channel_ids()
        assert all(c["kind"] == "camera" and c["ptz_type"] == "dome" and c["online"] for c in detail["channels"])
        assert {(n["id"], n["kind"], n["parent_id"]) for n in detail["tree"]} == {
            (cid, "camera", DEV) for cid in sim.cfg.channel_ids()}
        assert (await call(gw, "GET", f"{BASE}/34020000001320000099"))[0] == 404
        paths = gw.api.doc["paths"]
        assert {"get", "delete"} <= set(paths[f"{BASE}/{{id}}"]) and "patch" in paths[f"{BASE}/{{id}}/settings"]
        assert "post" in paths[f"{BASE}/{{id}}/catalog"] and "get" in paths["/api/gb28181/channels/{cid}/records"]
    finally:
        await sim.stop()


async def test_r18_device_address_only_for_those_who_may_manage_and_writes_need_manage(make_gateway) -> None:
    gw, sim = await registered(make_gateway)
    gw.resource_resolver = lambda cid: Resource("camera", cid, unit="u-east", security_level=1)
    officer = await person(gw, "li", "police_officer", clearance=3, tier="police")
    own_admin = await person(gw, "chen", "department_admin", clearance=3, tier="police", unit="u-east")
    other_admin = await person(gw, "zhou", "department_admin", clearance=3, tier="police", unit="u-west")
    try:
        for path in (BASE, f"{BASE}/{DEV}"):
            status, body, text = await call(gw, "GET", path, officer)
            assert status == 200 and "remote" not in (body["devices"][0] if path == BASE else body)
            assert "127.0.0.1" not in text and str(sim.endpoint.port) not in text
        for method, path, kw in (("PATCH", f"{BASE}/{DEV}/settings", {"json": {"charset": "UTF-8"}}),
                                 ("POST", f"{BASE}/{DEV}/catalog", {}), ("DELETE", f"{BASE}/{DEV}", {})):
            for token in (officer, other_admin):
                status, body, text = await call(gw, method, path, token, **kw)
                assert status == 403 and body["error"] == "forbidden", (method, path, body)
                assert "127.0.0.1" not in text
        assert gw.gb28181.server.devices.get(DEV).settings.charset is None  # nothing changed
        status, body, _ = await call(gw, "GET", f"{BASE}/{DEV}", own_admin)
        assert status == 200 and body["remote"]["port"] == sim.endpoint.port
        status, body, _ = await call(gw, "PATCH", f"{BASE}/{DEV}/settings", own_admin, json={"charset": "UTF-8"})
        assert status == 200 and body["settings"]["charset"] == "UTF-8"
        denied = await trail(gw, actor="user:zhou", action="manage", decision="deny")
        assert {r.resource for r in denied} == {f"device:{DEV}"} and len(denied) == 3
        (done,) = await trail(gw, action="gb28181.device.settings")
        assert done.actor == "user:chen" and done.extra["settings"]["charset"] == "UTF-8"
    finally:
        await sim.stop()


async def test_r1_device_status_is_a_live_query_and_504_when_the_device_does_not_answer(make_gateway) -> None:
    gw, sim = await registered(make_gateway, channels=1, request_timeout=1.0)
    status, body, _ = await call(gw, "GET", f"{BASE}/{DEV}/status")
    assert status == 200
    assert (body["online"], body["status"], body["record"], body["result"]) == ("ONLINE", "OK", "OFF", "OK")
    # the simulator writes the host's wall clock; the gateway reads it as the device's zone's (Asia/Shanghai)
    expected = datetime.now().replace(tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    assert abs((datetime.fromisoformat(body["device_time"]) - expected).total_seconds()) < 5
    assert (await sim.wait_for(lambda e: e[:2] == ("MESSAGE", "DeviceStatus")))[2] == DEV
    await sim.stop(unregister=False)  # the device goes silent while its registration still holds
    status, body, text = await call(gw, "GET", f"{BASE}/{DEV}/status")
    assert status == 504 and body["error"] == "device_timeout"
    assert body["message"] == f"device {DEV} did not answer DeviceStatus within 1 s" and "127.0.0.1" not in text


async def test_r1_catalog_sync_returns_counts_removes_dropped_channels_and_is_audited(make_gateway) -> None:
    gw, sim = await registered(make_gateway, channels=3)
    dropped = sim.cfg.channel_ids()[1:]
    sim.cfg.channels = 1  # the NVR lost two cameras
    try:
        status, body, _ = await call(gw, "POST", f"{BASE}/{DEV}/catalog")
        assert status == 200, body
        assert body == {"items": 1, "sum_num": 1, "packets": 1, "complete": True, "channels": 1, "added": 0,
                        "removed": 2, "conflicts": 0, "error": None}
        assert all(cid not in gw.registry.channels for cid in dropped)
        assert [n.id for n in gw.gb28181.tree(DEV)] == sim.cfg.channel_ids()
        (row,) = await trail(gw, action="gb28181.catalog.sync")
        assert row.resource == f"device:{DEV}" and row.extra["removed"] == 2
    finally:
        await sim.stop()


async def test_r15_deleted_device_stays_gone_after_restart_and_comes_back_when_it_registers(
        make_gateway, tmp_path, db_url) -> None:
    port = free_port()
    first = Gateway(gateway_config(tmp_path / "first", sip=sip(port=port), storage={"url": db_url}))
    await first.start()
    try:
        sim = await start_sim(first, channels=2)
        ids = sim.cfg.channel_ids()
        await until(lambda: all(c in first.registry.channels for c in ids))
        await first.gb28181.store.flush()
        status, body, _ = await call(first, "DELETE", f"{BASE}/{DEV}")
        assert status == 200 and body == {"id": DEV, "deleted": True, "channels": 2}
        assert (await call(first, "GET", f"{BASE}/{DEV}"))[0] == 404
        assert not any(c in first.registry.channels for c in ids)
        (row,) = await trail(first, action="gb28181.device.delete")
        assert row.extra == {"channels": 2}
    finally:
        await first.stop()
    gw = await make_gateway(sip=sip(port=port), storage={"url": db_url})
    try:
        assert gw.gb28181.server.devices.get(DEV) is None and not gw.gb28181.channels()
        assert (await call(gw, "GET", BASE))[1] == {"devices": []}
        assert await sim.keepalive() == 403  # forgotten: Register First
        await sim.register()
        await until(lambda: all(gw.registry.channels.get(c) and gw.registry.channels[c].online for c in ids))
        assert (await call(gw, "GET", f"{BASE}/{DEV}"))[1]["channel_count"] == 2
    finally:
        await sim.stop()


async def test_r1_record_search_by_window_and_type_in_device_local_time_answered_in_utc(make_gateway,
                                                                                      caplog) -> None:
    gw, sim = await registered(make_gateway, channels=1, devices=[{"id": DEV, "time_zone": "Europe/Berlin"}])
    cid = sim.cfg.channel_ids()[0]
    caplog.set_level(logging.DEBUG, logger="adapters.gb28181")
    path = f"/api/gb28181/channels/{cid}/records"
    try:
        status, body, _ = await call(gw, "GET", path, params={"start": "2026-01-05T02:00:00Z",
                                                               "end": "2026-01-05T03:00:00+00:00"})
        assert status == 200, body
        assert (body["start"], body["end"], body["type"], body["complete"]) == (
            "2026-01-05T02:00:00Z", "2026-01-05T03:00:00Z", "all", True)
        assert [(r["start"], r["end"], r["type"]) for r in body["records"]] == [
            ("2026-01-05T02:00:00Z", "2026-01-05T03:00:00Z", "time")] * 2
        sent = [m for m in caplog.messages if m.startswith(f"GB MESSAGE to {DEV}") and "RecordInfo" in m]
        assert "<StartTime>2026-01-05T03:00:00</StartTime>" in sent[0] and "<Type>all</Type>" in sent[0]
        status, body, _ = await call(gw, "GET", path, params={"start": "2026-01-05T02:00:00Z",
                                                               "end": "2026-01-05T03:00:00Z", "type": "alarm"})
        assert status == 200 and body["records"] == []  # the device answered time records to an alarm query
        assert "<Type>alarm</Type>" in [m for m in caplog.messages if "RecordInfo" in m and "MESSAGE to" in m][-1]
        for params, field in (({"end": "2026-01-05T03:00:00Z"}, "start"),
                              ({"start": "yesterday", "end": "2026-01-05T03:00:00Z"}, "start"),
                              ({"start": "2026-01-05T03:00:00Z", "end": "2026-01-05T02:00:00Z"}, "end"),
                              ({"start": "2026-01-05T02:00:00Z", "end": "2026-01-05T03:00:00Z", "type": "motion"},
                               "type")):
            status, body, _ = await call(gw, "GET", path, params=params)
            assert (status, body["field"]) == (400, field), params
        status, _, _ = await call(gw, "GET", "/api/gb28181/channels/34020000001310000077/records",
                                  params={"start": "2026-01-05T02:00:00Z", "end": "2026-01-05T03:00:00Z"})
        assert status == 404
    finally:
        await sim.stop()


async def test_r11_record_search_is_asked_with_view_playback_for_that_window(make_gateway) -> None:
    gw, sim = await registered(make_gateway, channels=1)
    cid = sim.cfg.channel_ids()[0]
    path = f"/api/gb28181/channels/{cid}/records"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    relative, grant = await relative_grant(gw, [cid], start, start + timedelta(hours=1))
    auditor = await person(gw, "sun", "auditor", clearance=3, tier="police")

    def window(a: datetime, b: datetime) -> dict[str, str]:
        return {"start": a.isoformat(), "end": b.isoformat()}

    try:
        inside = window(start + timedelta(minutes=10), start + timedelta(minutes=20))
        status, body, _ = await call(gw, "GET", path, relative, params=inside)
        assert status == 200 and len(body["records"]) == 2
        status, body, _ = await call(gw, "GET", path, relative, params=window(start - timedelta(hours=1), start))
        assert status == 403 and body["error"] == "forbidden"
        status, body, _ = await call(gw, "GET", path, auditor, params=inside)  # may list, may not view recordings
        assert status == 403
        allowed = await trail(gw, action="view_playback", resource=f"camera:{cid}", decision="allow")
        assert [(r.extra["start"], r.extra["end"], r.extra["grant"]) for r in allowed] == [
            (inside["start"], inside["end"], grant)]
        asked = [e for e in sim.received if e[:2] == ("MESSAGE", "RecordInfo")]
        assert len(asked) == 1  # the refused searches never reached the device
    finally:
        await sim.stop()


async def test_r1_one_info_line_per_registration_and_catalog_result_without_addresses(make_gateway, caplog) -> None:
    caplog.set_level(logging.INFO, logger="adapters.gb28181")
    gw, sim = await registered(make_gateway, channels=2)
    try:
        await call(gw, "POST", f"{BASE}/{DEV}/catalog")
    finally:
        await sim.stop()
    await until(lambda: not gw.gb28181.server.devices.get(DEV).online)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("adapters.gb28181") and r.levelno == logging.INFO]
    ours = [line for line in lines if DEV in line]
    assert [line for line in ours if line.startswith("GB register")] == [
        f"GB register {DEV} over udp: ok, expires 3600 s", f"GB register {DEV} over udp: unregistered"]
    catalogs = [line for line in ours if line.startswith("GB catalog")]
    assert len(catalogs) == 2 and all(re.match(rf"GB catalog {DEV} complete: 2 of SumNum 2 items in 1 packets", c)
                                      for c in catalogs)  # the one at registration and the manual sync
    assert not any("127.0.0.1" in line or str(sim.endpoint.port) in line for line in ours)
    assert not any("<Query>" in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
