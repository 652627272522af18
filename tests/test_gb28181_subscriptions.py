"""GB/T 28181 subscriptions over real HTTP and SIP with the simulated device (R1, R15): SUBSCRIBE for
Catalog, Alarm and MobilePosition, refreshed in the dialog before expiry, made anew when the device
has forgotten it, re-made after the device reboots and registers again; catalog NOTIFYs change the
registry, alarm and position NOTIFYs reach the SSE event stream; a refused SUBSCRIBE is a 502 and
nothing is kept; DELETE sends Expires 0."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from adapters.gb28181.simulator import Quirks, SimConfig, Simulator
from adapters.gb28181.web_control import SUBSCRIPTIONS
from gateway.bus import MobilePosition
from tests.conftest import auth

from .test_gb28181_signalling import DEV, sip, until

NEW_CAM = DEV[:10] + "1310000099"


async def gateway_with_device(make_gateway, **quirks) -> tuple:
    gw = await make_gateway(sip=sip(request_timeout=1.5))
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, quirks=Quirks(**quirks)))
    await sim.start()
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels)
    return gw, sim, cid


def url(gw, event: str = "") -> str:
    return f"http://127.0.0.1:{gw.http_port}/api/gb28181/devices/{DEV}/subscriptions" + (f"/{event}" if event else "")


async def test_r1_catalog_subscription_notifies_add_off_on_del_into_the_registry(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(url(gw, "catalog"), json={"expires": 600}) as r:
                assert r.status == 200, await r.text()
                sub = await r.json()
            assert sub["state"] == "active" and sub["status"] == 200 and sub["expires"] == 600
            async with http.get(url(gw)) as r:
                assert [s["event"] for s in (await r.json())["subscriptions"]] == ["catalog"]
        call_id, cmd, refresh, expires = sim.control.accepted[0]
        assert (cmd, refresh, expires) == ("Catalog", False, 600)
        assert sim.control.subscriptions[call_id].event == "Catalog"
        with gw.bus.subscribe("channel.added", "channel.removed") as events, gw.bus.subscribe("channel.state") as states:
            assert await sim.notify_catalog("ADD", NEW_CAM, name="新增通道") == [200]
            async with asyncio.timeout(5):
                added = await events.get()
            assert (added.topic, added.channel_id) == ("channel.added", NEW_CAM)
            assert gw.registry.channels[NEW_CAM].name == "新增通道"
            assert await sim.notify_catalog("OFF", cid) == [200]
            async with asyncio.timeout(5):  # the change reaches the bus (and the event stream), not only the registry
                while (off := await states.get()).channel_id != cid:
                    pass
            assert (off.online, off.reason) == (False, "off")
            assert await sim.notify_catalog("DEL", NEW_CAM) == [200]
            async with asyncio.timeout(5):
                removed = await events.get()
            assert (removed.topic, removed.channel_id) == ("channel.removed", NEW_CAM)
            assert await sim.notify_catalog("ON", cid) == [200]
            async with asyncio.timeout(5):
                while (on := await states.get()).channel_id != cid:
                    pass
            assert on.online and gw.registry.channels[cid].online
        assert NEW_CAM not in gw.registry.channels
        assert gw.metrics.value("vsgw_gb28181_notify_total", event="catalog") == 4
    finally:
        await sim.stop()


async def test_r1_subscription_is_refreshed_in_its_dialog_before_it_expires(make_gateway) -> None:
    gw, sim, _ = await gateway_with_device(make_gateway)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http, \
                http.post(url(gw, "alarm"), json={"expires": 2, "priority_min": 1}) as r:
            assert r.status == 200
        await sim.wait_for(lambda e: e[:2] == ("SUBSCRIBE", "Alarm refresh"))
        (first, _, _, _), (again, cmd, refresh, _) = sim.control.accepted[:2]
        assert again == first and cmd == "Alarm" and refresh  # same dialog, before the 2 s ran out
        assert sim.control.subscriptions[first].refreshes >= 1
        body = next(e[2] for e in sim.received if e[:2] == ("SUBSCRIBE", "Alarm"))
        assert b"<StartAlarmPriority>1</StartAlarmPriority>" in body
    finally:
        await sim.stop()


async def test_r1_a_forgotten_subscription_is_made_anew_in_a_new_dialog(make_gateway) -> None:
    gw, sim, _ = await gateway_with_device(make_gateway, forget_subscriptions=True)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(url(gw, "catalog"), json={"expires": 2}) as r:
                assert r.status == 200
            await sim.wait_for(lambda e: e[:2] == ("SUBSCRIBE", "unknown dialog"))
            await until(lambda: len(sim.control.accepted) >= 2)
            async with http.get(url(gw)) as r:
                listed = (await r.json())["subscriptions"][0]
        first, second = sim.control.accepted[0][0], sim.control.accepted[1][0]
        assert first != second and sim.control.accepted[1][2] is False  # a fresh SUBSCRIBE, not a refresh
        assert listed["refreshes"] >= 1
        assert gw.metrics.value("vsgw_gb28181_subscribe_total", event="catalog", result="481") >= 1
    finally:
        await sim.stop()


async def test_r15_after_a_reboot_and_a_new_registration_the_device_is_subscribed_again(make_gateway) -> None:
    gw, sim, _ = await gateway_with_device(make_gateway)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(url(gw, "catalog"), json={"expires": 3600}) as r:
                assert r.status == 200
            async with http.post(f"http://127.0.0.1:{gw.http_port}/api/gb28181/devices/{DEV}/control",
                                 json={"command": "teleboot"}) as r:
                assert r.status == 200
        await sim.wait_for(lambda e: e[0] == "BOOT")
        await until(lambda: len(sim.control.of("Catalog")) == 1)
        before_boot = sim.control.accepted[0][0]
        assert before_boot not in sim.control.subscriptions  # the device lost it with the reboot
        with gw.bus.subscribe("channel.added") as added:
            assert await sim.notify_catalog("ADD", NEW_CAM) == [200]  # in the new dialog
            async with asyncio.timeout(5):
                assert (await added.get()).channel_id == NEW_CAM
    finally:
        await sim.stop()
    # the same device gone (unregistered) and back on a new socket: subscribed again when it comes online
    sim2 = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port))
    await sim2.start()
    try:
        await sim2.wait_for(lambda e: e[:2] == ("SUBSCRIBE", "Catalog"))
        await until(lambda: gw.app[SUBSCRIPTIONS].subs[(DEV, "catalog")].state == "active")
    finally:
        await sim2.stop()


async def read_sse(resp: aiohttp.ClientResponse, topics: set[str], count: int) -> list[tuple[str, dict]]:
    out, topic = [], None
    async with asyncio.timeout(8):
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                topic = line[7:]
            elif line.startswith("data: ") and topic in topics:
                out.append((topic, json.loads(line[6:])))
                if len(out) == count:
                    return out
    return out


async def test_r1_alarm_and_position_notifies_reach_the_event_stream(make_gateway) -> None:
    gw, sim, cid = await gateway_with_device(make_gateway)
    base = f"http://127.0.0.1:{gw.http_port}"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http, \
                http.get(f"{base}/api/events?topics=alarm,position") as stream:
            assert stream.status == 200
            async with http.post(url(gw, "alarm"), json={"expires": 600}) as r:
                assert r.status == 200
            assert await sim.notify_alarm(cid, priority=2, description="越界") == [200]
            async with http.post(url(gw, "mobileposition"), json={"expires": 600, "interval": 1}) as r:
                assert r.status == 200
            got = await read_sse(stream, {"alarm", "position"}, 3)
        alarm = next(data for topic, data in got if topic == "alarm")
        assert alarm["channel_id"] == cid and alarm["priority"] == 2 and alarm["description"] == "越界"
        positions = [data for topic, data in got if topic == "position"]
        assert len(positions) == 2 and positions[0]["device"] == DEV
        assert positions[1]["longitude"] > positions[0]["longitude"] and positions[0]["speed"] == 12.5
        assert gw.metrics.value("vsgw_gb28181_notify_total", event="mobileposition") >= 2
    finally:
        await sim.stop()


async def test_r1_positions_sent_by_message_are_published_too(make_gateway) -> None:
    gw, sim, _ = await gateway_with_device(make_gateway, position_by_message=True)
    try:
        with gw.bus.subscribe("position") as positions:
            async with aiohttp.ClientSession(headers=auth()) as http, \
                    http.post(url(gw, "mobileposition"), json={"interval": 1}) as r:
                assert r.status == 200
            async with asyncio.timeout(5):
                event = await positions.get()
        assert isinstance(event, MobilePosition) and event.channel_id == DEV and -180 <= event.longitude <= 180
        assert gw.metrics.value("vsgw_gb28181_notify_total", event="mobileposition") == 0  # no NOTIFY came
    finally:
        await sim.stop()


async def test_r1_refused_subscription_is_a_502_and_nothing_is_kept(make_gateway) -> None:
    gw, sim, _ = await gateway_with_device(make_gateway, refuse_subscribe=True)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(url(gw, "catalog"), json={}) as r:
                body = await r.json()
            assert r.status == 502 and body["error"] == "device_refused" and "489" in body["message"]
            async with http.get(url(gw)) as r:
                assert (await r.json())["subscriptions"] == []
            async with http.delete(url(gw, "catalog")) as r:
                assert r.status == 404
        assert gw.metrics.value("vsgw_gb28181_subscribe_total", event="catalog", result="489") == 1
    finally:
        await sim.stop()


async def test_r1_unsubscribe_sends_expires_zero_and_a_terminated_notify_resubscribes(make_gateway) -> None:
    gw, sim, _ = await gateway_with_device(make_gateway)
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(url(gw, "alarm"), json={}) as r:
                assert r.status == 200
            assert await sim.end_subscriptions("Alarm") == [200]  # the device ends it
            await until(lambda: len(sim.control.of("Alarm")) == 1)  # … and the gateway makes it again
            assert sim.control.accepted[1][0] != sim.control.accepted[0][0]
            async with http.delete(url(gw, "alarm")) as r:
                assert r.status == 200 and (await r.json())["state"] == "cancelled"
        await sim.wait_for(lambda e: e[:2] == ("SUBSCRIBE", "cancelled"))
        assert sim.control.of("Alarm") == []
    finally:
        await sim.stop()
