"""GB/T 28181 device control over real HTTP and real SIP sockets to the simulated device (R1, R2, R18):
cruise, scan and aux/wiper as PTZCmd frames, RecordCmd/GuardCmd/AlarmCmd/HomePosition answered by
the device's Response (ERROR → 502 with its answer, silence → 504), TeleBoot, PresetQuery in several
packets, ConfigDownload, alarm queries answered by alarm notifies on the bus; every route behind
the gate (PTZ vs MANAGE) and bad input a 400 naming the field."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from adapters.gb28181 import ptz
from adapters.gb28181.simulator import Quirks, SimConfig, Simulator
from gateway.bus import Alarm
from tests.conftest import auth

from .people import FAST_ARGON2, bearer, person, trail
from .test_gb28181_signalling import DEV, sip, until


async def gateway_with_device(make_gateway, **quirks) -> tuple:
    gw = await make_gateway(sip=sip(request_timeout=1.5))
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, quirks=Quirks(**quirks)))
    await sim.start()
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels)
    return gw, sim, cid


def controls(sim: Simulator) -> list[dict]:
    return [e[2] for e in sim.received if e[1] == "DeviceControl"]


def test_r1_extended_ptzcmd_bytes_match_the_standard() -> None:
    assert bytes.fromhex(ptz.cruise_add(2, 7).hex())[3:6] == bytes([0x84, 2, 7])
    assert bytes.fromhex(ptz.cruise_remove(2).hex())[3:6] == bytes([0x85, 2, 0])
    speed = bytes.fromhex(ptz.cruise_speed(1, 0xABC).hex())  # 12 bits: low byte in B6, high nibble atop B7
    assert (speed[3], speed[5], speed[6]) == (0x86, 0xBC, 0xA0) and speed[7] == sum(speed[:7]) % 256
    assert bytes.fromhex(ptz.cruise_dwell(1, 30).hex())[3] == 0x87
    assert bytes.fromhex(ptz.cruise_start(3).hex())[3:5] == bytes([0x88, 3])
    assert [bytes.fromhex(ptz.scan(1, op).hex())[5] for op in (ptz.SCAN_START, ptz.SCAN_LEFT, ptz.SCAN_RIGHT)] \
        == [0, 1, 2]
    assert bytes.fromhex(ptz.scan_speed(1, 100).hex())[3] == 0x8A
    assert ptz.aux(ptz.WIPER, True).hex() == "A50F018C01000042"
    assert bytes.fromhex(ptz.aux(ptz.WIPER, False).hex())[3] == 0x8D
    assert ptz.describe(ptz.frame(ptz.cruise_speed(4, 4095).hex())) == {"op": "cruise_speed", "cruise": 4,
                                                                       "speed": 4095}
    for bad in (lambda: ptz.cruise_speed(1, 4096), lambda: ptz.cruise_add(1, 0), lambda: ptz.aux(0, True)):
        with pytest.raises(ValueError):
            bad()


async def test_r1_cruise_scan_and_wiper_reach_the_device_as_ptzcmd_frames(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway)
    url = f"http://127.0.0.1:{gw.http_port}/api/gb28181/channels/{cid}/control"
    steps = [{"command": "cruise_add", "cruise": 1, "preset": 1}, {"command": "cruise_add", "cruise": 1, "preset": 2},
             {"command": "cruise_speed", "cruise": 1, "speed": 1000}, {"command": "cruise_dwell", "cruise": 1,
                                                                       "seconds": 15},
             {"command": "cruise_start", "cruise": 1}, {"command": "cruise_stop"},
             {"command": "scan_left", "scan": 2}, {"command": "scan_right", "scan": 2},
             {"command": "scan_speed", "scan": 2, "speed": 50}, {"command": "scan_start", "scan": 2},
             {"command": "wiper_on"}, {"command": "aux_on", "switch": 3}, {"command": "aux_off", "switch": 3}]
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            for body in steps:
                async with http.post(url, json=body) as r:
                    assert r.status == 200, (body, await r.text())
                    assert (await r.json())["answered"] is False  # PTZCmd has no Response: the 200 is the answer
        await until(lambda: len(controls(sim)) == len(steps))
        state = sim.control.state
        assert state.cruises[1] == {"points": [1, 2], "speed": 1000, "dwell": 15, "running": False}
        assert state.scanning[2] == {"left": True, "right": True, "speed": 50, "running": True}
        assert state.aux == {1: True, 3: False}
        sent = controls(sim)
        assert all(c["target"] == cid for c in sent)
        assert sent[5]["ptzcmd"] == ptz.STOP.hex()  # a cruise stops with the plain stop frame
        assert gw.metrics.value("vsgw_gb28181_control_total", command="wiper_on", result="sent") == 1
    finally:
        await sim.stop()


async def test_r1_record_guard_home_position_are_confirmed_by_the_device_response(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway)
    base = f"http://127.0.0.1:{gw.http_port}/api/gb28181"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            for body in ({"command": "record_start"}, {"command": "guard_set"},
                         {"command": "home_position", "enabled": True, "preset": 2, "reset_time": 30},
                         {"command": "alarm_reset", "method": 5, "type": 2}):
                async with http.post(f"{base}/channels/{cid}/control", json=body) as r:
                    assert r.status == 200, await r.text()
                    assert await r.json() == {"command": body["command"], "target": cid, "answered": True,
                                              "result": "OK"}
            async with http.post(f"{base}/devices/{DEV}/control", json={"command": "guard_reset"}) as r:
                assert r.status == 200 and (await r.json())["target"] == DEV
            async with http.post(f"{base}/channels/{cid}/control", json={"command": "record_stop"}) as r:
                assert r.status == 200
        state = sim.control.state
        assert state.recording == {cid: False} and state.guard is False
        assert state.home == {"enabled": 1, "preset": 2, "reset_time": 30}
        reset = next(c for c in controls(sim) if c["fields"].get("alarmcmd"))
        assert reset["fields"]["alarmcmd"] == "ResetAlarm"
        assert gw.metrics.value("vsgw_gb28181_control_total", command="record_start", result="ok") == 1
    finally:
        await sim.stop()


async def test_r1_device_answering_error_is_a_502_with_its_answer(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway, control_error=True)
    url = f"http://127.0.0.1:{gw.http_port}/api/gb28181/channels/{cid}/control"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http, \
                http.post(url, json={"command": "record_start"}) as r:
            body = await r.json()
        assert r.status == 502 and body["error"] == "device_error" and body["answer"]["result"] == "ERROR"
        assert sim.control.state.recording == {cid: True}  # the device took it in, then reported failure
    finally:
        await sim.stop()


async def test_r1_device_that_never_confirms_is_a_504_naming_the_missing_response(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway, no_control_response=True)
    url = f"http://127.0.0.1:{gw.http_port}/api/gb28181/channels/{cid}/control"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http, http.post(url, json={"command": "guard_set"}) as r:
            body = await r.json()
        assert r.status == 504 and body["error"] == "no_answer" and "DeviceControl Response" in body["message"]
        assert gw.metrics.value("vsgw_gb28181_control_total", command="guard_set", result="no_answer") == 1
    finally:
        await sim.stop()


async def test_r1_presets_come_from_a_preset_query_answered_in_several_packets(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway, split_catalog=True)
    base = f"http://127.0.0.1:{gw.http_port}/api"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(f"{base}/cameras/{cid}/ptz", json={"preset": 9, "preset_action": "set"}) as r:
                assert r.status == 200
            await until(lambda: 9 in sim.control.state.presets)
            async with http.get(f"{base}/gb28181/channels/{cid}/presets") as r:
                assert r.status == 200
                listed = await r.json()
        assert [p["id"] for p in listed["presets"]] == [1, 2, 9]
        assert listed["presets"][0]["name"] == "大门"
        packets = [e for e in sim.received if e[1] == "PresetQuery"]
        assert len(packets) == 1  # one query, answered one item per packet
    finally:
        await sim.stop()


async def test_r1_config_download_and_alarm_query(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway)
    base = f"http://127.0.0.1:{gw.http_port}/api/gb28181/devices/{DEV}"
    try:
        assert await sim.alarm(cid, priority=1) == 200
        assert await sim.alarm(cid, priority=4, description="低优先级") == 200
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.get(f"{base}/config") as r:
                assert r.status == 200
                config = (await r.json())["config"]
            assert config["basicparam"]["heartbeatinterval"] == "60"
            async with http.get(f"{base}/config?type=Nonsense") as r:
                assert r.status == 400 and (await r.json())["field"] == "type"
            with gw.bus.subscribe("alarm") as alarms:
                async with http.post(f"{base}/alarms/query", json={
                        "priority_min": 1, "priority_max": 2, "start": "2024-05-01T00:00:00+08:00"}) as r:
                    assert r.status == 200 and (await r.json())["sent"]
                async with asyncio.timeout(5):
                    event = await alarms.get()
        assert isinstance(event, Alarm) and event.channel_id == cid and event.priority == 1
        await sim.wait_for(lambda e: e == ("MESSAGE", "Alarm", DEV))  # the query, to the device itself
    finally:
        await sim.stop()


async def test_r18_bad_control_input_is_a_400_naming_the_field_and_reaches_no_device(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway)
    base = f"http://127.0.0.1:{gw.http_port}/api/gb28181"
    cases = [({"command": "self_destruct"}, "command"), ({"preset": 3}, "command"),
             ({"command": "cruise_add", "cruise": 1}, "preset"),
             ({"command": "cruise_speed", "cruise": 1, "speed": 5000}, "speed"),
             ({"command": "cruise_start", "cruise": True}, "cruise"),
             ({"command": "wiper_on", "switch": 2}, "switch"),
             ({"command": "home_position", "enabled": "yes"}, "enabled"),
             ({"command": "home_position", "enabled": True}, "preset"),
             ({"command": "teleboot"}, "command")]  # a device command, not a channel one
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            for body, name in cases:
                async with http.post(f"{base}/channels/{cid}/control", json=body) as r:
                    assert r.status == 400 and (await r.json())["field"] == name, body
            async with http.post(f"{base}/channels/{cid}/control", data=b"{not json",
                                 headers={"Content-Type": "application/json"}) as r:
                assert r.status == 400
            async with http.post(f"{base}/devices/{DEV}/control", json={"command": "guard_set", "channel": "x"}) as r:
                assert r.status == 400 and (await r.json())["field"] == "channel"
            async with http.post(f"{base}/devices/{DEV}/subscriptions/weather", json={}) as r:
                assert r.status == 400 and (await r.json())["field"] == "event"
            async with http.post(f"{base}/devices/{DEV}/subscriptions/catalog", json={"expires": 0}) as r:
                assert r.status == 400 and (await r.json())["field"] == "expires"
            async with http.post(f"{base}/devices/{DEV}/alarms/query", json={"start": "yesterday"}) as r:
                assert r.status == 400 and (await r.json())["field"] == "start"
            async with http.post(f"{base}/channels/nope/control", json={"command": "wiper_on"}) as r:
                assert r.status == 404
            async with http.get(f"{base}/channels/{cid}/presets") as r:  # the device still serves
                assert r.status == 200
        assert controls(sim) == []
        assert gw.metrics.value("vsgw_http_rejected_total", status="400") >= len(cases) + 5
    finally:
        await sim.stop()


async def test_r2_wall_operator_may_scan_but_not_record_reboot_or_subscribe(make_gateway) -> None:
    gw = await make_gateway(sip=sip(), identity=FAST_ARGON2)
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port))
    await sim.start()
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels)
    op = bearer(await person(gw, "op", "wall_operator", clearance=3, tier="police"))
    api = f"http://127.0.0.1:{gw.http_port}/api/gb28181"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{api}/channels/{cid}/control", json={"command": "scan_start", "scan": 1},
                                 headers=op) as r:
                assert r.status == 200, await r.text()
            for method, path, body in (("POST", f"/channels/{cid}/control", {"command": "record_start"}),
                                       ("POST", f"/devices/{DEV}/control", {"command": "teleboot"}),
                                       ("POST", f"/devices/{DEV}/subscriptions/alarm", {}),
                                       ("GET", f"/devices/{DEV}/subscriptions", None)):
                async with http.request(method, api + path, json=body, headers=op) as r:
                    assert r.status == 403 and "may not manage" in (await r.json())["message"], path
            async with http.post(f"{api}/channels/{cid}/control", json={"command": "wiper_on"}) as r:
                assert r.status == 401
        await until(lambda: len(controls(sim)) == 1)
        assert controls(sim)[0]["op"] == {"op": "scan_start", "scan": 1}
        assert not any(e[0] == "SUBSCRIBE" for e in sim.received)
        asked = await trail(gw, actor="user:op")
        assert [(r.action, r.resource, r.decision) for r in asked if r.action in ("ptz", "manage")] == [
            ("ptz", f"camera:{cid}", "allow"), ("manage", f"camera:{cid}", "deny"),
            ("manage", f"device:{DEV}", "deny"), ("manage", f"device:{DEV}", "deny"),
            ("manage", f"device:{DEV}", "deny")]
        assert [(r.action, r.decision) for r in await trail(gw, actor="user:op", action="gb28181.scan_start")] == [
            ("gb28181.scan_start", "done")]
    finally:
        await sim.stop()


async def test_r1_teleboot_restarts_the_device_which_registers_again(make_gateway) -> None:
    gw, sim, _ = await gateway_with_device(make_gateway)
    url = f"http://127.0.0.1:{gw.http_port}/api/gb28181/devices/{DEV}/control"
    dev = gw.gb28181.server.devices.get(DEV)
    first = dev.registered_at
    try:
        async with aiohttp.ClientSession(headers=auth()) as http, http.post(url, json={"command": "teleboot"}) as r:
            assert r.status == 200 and (await r.json())["answered"] is False  # TeleBoot has no Response
        await sim.wait_for(lambda e: e[0] == "BOOT")
        assert dev.registered_at > first and dev.online
    finally:
        await sim.stop()
