"""GB/T 28181 signalling against the device simulator over real UDP/TCP sockets (R1, R15):
digest registration, Date/Expires, unregister, keepalive timeouts, catalog quirks, alarms."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.gb28181 import manscdp
from adapters.gb28181.simulator import Quirks, SimConfig, Simulator
from gateway.bus import Alarm, ChannelState

DEV = "34020000001320000001"
DEV2 = "34020000001110000002"


def sip(**kw) -> dict:
    return {"enabled": True, "port": 0, "password": "12345678", "keepalive_interval": 60.0,
            "rtp_low": 0, "rtp_high": 0, "request_timeout": 3.0, "catalog_timeout": 3.0, **kw}


async def until(pred: Callable[[], bool], timeout: float = 8.0) -> None:
    """Poll a condition with a deadline (the registry has no per-test event to await)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)


async def start_sim(gw, **kw) -> Simulator:
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, **kw))
    await sim.start()
    return sim


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_device_registers_with_digest_and_channels_join_registry(make_gateway, transport) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw, transport=transport, channels=3)
    try:
        server = gw.gb28181.server
        dev = server.devices.get(DEV)
        assert dev is not None and dev.online and dev.gb_version == "3.0"
        assert dev.peer.transport == transport
        ids = sim.cfg.channel_ids()
        await until(lambda: all(cid in gw.registry.channels for cid in ids))
        ch = gw.registry.channels[ids[0]]
        assert ch.online and ch.ptz and ch.adapter == "gb28181"
        assert ch.civil_code == DEV[:6] and ch.parent == DEV
        assert ch.name == "模拟摄像机 1"  # GB18030 body decoded
        assert gw.metrics.value("vsgw_gb28181_register_total", result="ok") == 1
        await until(lambda: dev.info.get("manufacturer") == "vsgw")
    finally:
        await sim.stop()
    await until(lambda: not gw.registry.channels[ids[0]].online)
    assert not dev.online
    assert gw.metrics.value("vsgw_gb28181_register_total", result="unregister") == 1


async def test_r1_wrong_password_refused_with_403(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, password="wrong"))
    with pytest.raises(PermissionError, match="403"):
        await sim.start()
    await sim.stop(unregister=False)
    assert gw.gb28181.server.devices.get(DEV) is None
    assert gw.metrics.value("vsgw_gb28181_register_total", result="wrong_password") == 1


async def test_r1_per_device_password_and_unknown_devices_refused(make_gateway) -> None:
    gw = await make_gateway(sip=sip(password="", accept_unknown=False, device_passwords=[f"{DEV}:s3cret"]))
    good = await start_sim(gw, password="s3cret")
    stranger = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, device_id=DEV2, password="s3cret"))
    with pytest.raises(PermissionError, match="403"):
        await stranger.start()
    await stranger.stop(unregister=False)
    assert gw.gb28181.server.devices.get(DEV).online
    assert gw.gb28181.server.devices.get(DEV2) is None
    await good.stop()


async def test_r1_register_answer_has_date_and_expires(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, expires=1800))
    seen: list = []
    original = sim.endpoint.request

    async def spy(msg, peer, **kw):
        resp = await original(msg, peer, **kw)
        seen.append(resp)
        return resp

    sim.endpoint.request = spy  # type: ignore[method-assign]
    await sim.start()
    ok = next(r for r in seen if r.status == 200)
    assert ok.get("expires") == "1800"
    date = ok.get("date") or ""
    assert len(date) == 23 and date[10] == "T"  # 2024-05-01T12:00:00.000, gateway clock
    sent = datetime.fromisoformat(date).replace(tzinfo=ZoneInfo("Asia/Shanghai"))  # the device's zone (sip.time_zone)
    assert abs((sent - datetime.now(UTC)).total_seconds()) < 60
    assert ok.get("x-gb-ver") == "3.0"
    assert seen[0].status == 401 and 'realm="3402000000"' in seen[0].get("www-authenticate")
    await sim.stop()


async def test_r15_missed_keepalives_take_device_and_channels_offline(make_gateway) -> None:
    gw = await make_gateway(sip=sip(keepalive_interval=0.5, keepalive_misses=2))  # offline after 1 s of silence
    with gw.bus.subscribe("channel.state") as events:
        sim = await start_sim(gw, keepalive_interval=0.1, quirks=Quirks(no_keepalive=False))
        cid = sim.cfg.channel_ids()[0]
        await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
        dev = gw.gb28181.server.devices.get(DEV)
        await until(lambda: gw.metrics.value("vsgw_gb28181_keepalive_total", result="ok") >= 15, timeout=6)
        assert dev.online  # 1.5 s of keepalives every 0.1 s: well past one deadline
        await sim.stop(unregister=False)  # the device vanishes: its socket closes, nothing more arrives
        await until(lambda: not dev.online, timeout=6)
        assert not gw.registry.channels[cid].online
        offline = None
        while offline is None:
            ev = await asyncio.wait_for(events.get(), 3)
            if isinstance(ev, ChannelState) and ev.channel_id == cid and not ev.online:
                offline = ev
        assert offline.reason == "keepalive timeout"


async def test_r15_keepalive_from_forgotten_device_triggers_reregistration(make_gateway) -> None:
    gw = await make_gateway(sip=sip(keepalive_interval=5))
    sim = await start_sim(gw)
    server = gw.gb28181.server
    server.devices.forget(DEV)  # as after a gateway restart
    assert await sim.keepalive() == 403
    assert gw.metrics.value("vsgw_gb28181_keepalive_total", result="unregistered") == 1
    await sim.register()  # what the simulator's loop (and real devices) do on a refused keepalive
    assert server.devices.get(DEV).online
    assert await sim.keepalive() == 200
    await sim.stop()


async def test_r1_split_catalog_one_item_per_packet_deduplicated(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw, channels=5, quirks=Quirks(split_catalog=True, charset="UTF-8"))
    ids = sim.cfg.channel_ids()
    await until(lambda: all(cid in gw.registry.channels for cid in ids))
    adapter = gw.gb28181
    assert await adapter.refresh_catalog(DEV) == 5
    assert sorted(c.id for c in adapter.channels()) == ids
    assert gw.registry.channels[ids[4]].name == "模拟摄像机 5"  # UTF-8 body decoded
    assert gw.metrics.value("vsgw_gb28181_catalog_total", result="complete") == 2
    await sim.stop()


async def test_r1_catalog_timeout_keeps_partial_answer(make_gateway) -> None:
    gw = await make_gateway(sip=sip(catalog_timeout=0.5))
    sim = await start_sim(gw, channels=2)
    await until(lambda: len(gw.gb28181.channels()) == 2)

    async def half(sn: int) -> None:  # the device loses its second packet
        await sim.send_manscdp("Response", "Catalog", [("SumNum", 2), ('DeviceList Num="1"', [
            ("Item", [("DeviceID", sim.cfg.channel_ids()[0]), ("Name", "only one"), ("Status", "ON")])])], sn=sn)

    sim._answer_catalog = half  # type: ignore[method-assign]
    answer = await gw.gb28181.server.query(gw.gb28181.server.devices.get(DEV), "Catalog", timeout=0.5)
    assert not answer.complete and answer.total == 2 and list(answer.items) == [sim.cfg.channel_ids()[0]]
    await sim.stop()


async def test_r1_answers_correlated_by_device_cmd_and_sn(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw)
    server = gw.gb28181.server
    dev = server.devices.get(DEV)
    status, info = await asyncio.gather(server.query(dev, "DeviceStatus"), server.query(dev, "DeviceInfo"))
    assert status.complete and status.first.root.get("online") == "ONLINE"
    assert info.complete and info.first.root.get("model") == "gb-sim"
    assert status.first.sn != info.first.sn
    # an answer with an SN nobody asked for is not taken as the answer to a pending query
    key = server.collector.expect(DEV, "DeviceStatus", 999_999)
    await sim.send_manscdp("Response", "DeviceStatus", [("Online", "OFFLINE")], sn=123_456)
    late = await server.collector.wait(key, 0.3)
    assert not late.complete and late.first is None
    await sim.stop()


async def test_r18_a_device_cannot_answer_a_query_put_to_another_device(make_gateway) -> None:
    """Device B, registered and authenticated over its own transport, sends a Response in device A's
    name with the pending query's SN: it is not taken as A's answer; A's own answer is."""
    gw = await make_gateway(sip=sip())
    honest, other = await start_sim(gw), await start_sim(gw, device_id="34020000001320000002")
    try:
        server = gw.gb28181.server
        key = server.collector.expect(DEV, "DeviceStatus", 777_001, DEV)
        await other.send_manscdp("Response", "DeviceStatus", [("Online", "OFFLINE")], sn=777_001, device_id=DEV)
        await honest.send_manscdp("Response", "DeviceStatus", [("Online", "ONLINE")], sn=777_001)
        answer = await server.collector.wait(key, 3)
        assert answer.complete and answer.packets == 1 and answer.first.root.get("online") == "ONLINE"
    finally:
        await honest.stop()
        await other.stop()


async def test_r1_an_alarm_query_response_raises_no_alarm(make_gateway) -> None:
    """A Response/Alarm answers an alarm query; only a Notify/Alarm is an alarm on the bus."""
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw)
    cid = sim.cfg.channel_ids()[0]
    try:
        with gw.bus.subscribe("alarm") as events:
            await sim.send_manscdp("Response", "Alarm", [("Result", "OK")], device_id=cid)
            assert await sim.alarm(cid, priority=1, method=5, alarm_type=2, description="second") == 200
            ev = await asyncio.wait_for(events.get(), 5)
        assert ev.description == "second" and gw.metrics.value("vsgw_gb28181_alarms_total") == 1
    finally:
        await sim.stop()


async def test_r1_alarm_notify_published_as_event(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw)
    cid = sim.cfg.channel_ids()[0]
    with gw.bus.subscribe("alarm") as events:
        assert await sim.alarm(cid, priority=2, method=5, alarm_type=2, description="移动侦测") == 200
        ev = await asyncio.wait_for(events.get(), 5)
    assert isinstance(ev, Alarm)
    assert (ev.channel_id, ev.priority, ev.kind, ev.description) == (cid, 2, "2", "移动侦测")
    assert ev.extra["device"] == DEV and ev.extra["method"] == "5"
    ack = await sim.wait_for(lambda e: e[1] == "Alarm")
    assert ack[2] == cid  # the platform's Response Alarm Result OK
    await sim.stop()


async def test_r1_catalog_notify_events_add_del_off(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw, channels=2)
    a, b = sim.cfg.channel_ids()
    await until(lambda: b in gw.registry.channels)
    new = a[:-4] + "0099"

    async def notify(event: str, cid: str) -> None:
        await sim.send_manscdp("Notify", "Catalog", [("SumNum", 1), ('DeviceList Num="1"', [
            ("Item", [("DeviceID", cid), ("Name", "added"), ("Event", event), ("Status", "ON")])])])

    await notify("ADD", new)
    await notify("OFF", a)
    # a subscription NOTIFY (its own SIP method) carries the same items
    body = manscdp.build("Notify", "Catalog", 9, DEV, [("SumNum", 1), ('DeviceList Num="1"', [
        ("Item", [("DeviceID", b), ("Event", "DEL")])])])
    resp = await sim.endpoint.request(sim._request("NOTIFY", body, manscdp.CONTENT_TYPE), sim.server)
    assert resp.status == 200
    await until(lambda: new in gw.registry.channels and b not in gw.registry.channels)
    assert not gw.registry.channels[a].online
    assert gw.registry.channels[new].name == "added"
    await sim.stop()


async def test_r1_refresh_keeps_device_online_and_catalog_subscribe_reaches_device(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw)
    server = gw.gb28181.server
    dev = server.devices.get(DEV)
    first_call = sim.call_id
    await sim.register()  # refresh on the same Call-ID
    assert sim.call_id == first_call and dev.online
    assert gw.metrics.value("vsgw_gb28181_device_state_total", state="online", reason="registered") == 1
    assert await gw.gb28181.subscribe_catalog(DEV, expires=600) == 200
    sub = await sim.wait_for(lambda e: e[0] == "SUBSCRIBE")
    assert b"<CmdType>Catalog</CmdType>" in sub[2]
    await sim.stop()
