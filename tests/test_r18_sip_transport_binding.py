"""R18: a GB/T 28181 device is who registered over a transport, not whoever writes its ID in From.
Requests in a registered device's name (or one of its channels') from another UDP address or TCP
connection are refused and counted — or, configured to, digest-challenged — and only an
authenticated REGISTER moves the device's binding. Real sockets on loopback; the "attacker" is a
second simulator that claims the same device ID."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from adapters.base import PtzCommand
from adapters.gb28181 import manscdp
from adapters.gb28181.simulator import Quirks, SimConfig, Simulator
from gateway.bus import Alarm

from .test_gb28181_signalling import DEV, sip, start_sim, until
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")


async def impostor(gw, transport: str = "udp", **kw) -> Simulator:
    """Claims DEV from its own socket (or connection) without registering."""
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, transport=transport, **kw))
    await sim.open()
    return sim


def rejected(gw, reason: str) -> float:
    return gw.metrics.value("vsgw_gb28181_rejected_total", reason=reason)


def catalog_notify(cid: str, event: str) -> list:
    return [("SumNum", 1), ('DeviceList Num="1"', [("Item", [("DeviceID", cid), ("Name", "forged"),
                                                               ("Event", event), ("Status", "ON")])])]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r18_sip_keepalive_from_another_address_is_refused(make_gateway, transport) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw, transport=transport)
    fake = await impostor(gw, transport)
    cid = sim.cfg.channel_ids()[0]
    try:
        await until(lambda: cid in gw.registry.channels)
        dev = gw.gb28181.server.devices.get(DEV)
        bound = dev.peer
        assert bound.addr == (sim.endpoint.host, sim.endpoint.port)
        assert await fake.keepalive() == 403
        assert rejected(gw, "foreign_source") == 1
        assert dev.peer == bound  # the keepalive did not re-point the device
        # so commands still reach the real device, and nothing reaches the impostor
        await gw.gb28181.ptz(cid, PtzCommand(pan=0.5))
        ptz = await sim.wait_for(lambda e: e[1] == "DeviceControl")
        assert ptz[2]["target"] == cid
        assert fake.received == []
        assert await sim.keepalive() == 200
    finally:
        await fake.stop(unregister=False)
        await sim.stop()


async def test_r18_sip_catalog_notify_and_alarm_from_another_address_are_refused(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw, channels=2)
    fake = await impostor(gw)
    a, b = sim.cfg.channel_ids()
    forged, real = a[:-4] + "0098", a[:-4] + "0099"
    try:
        await until(lambda: b in gw.registry.channels)
        with gw.bus.subscribe("alarm") as alarms:
            # a subscription NOTIFY deleting a channel, a MESSAGE adding one, an alarm: all refused
            body = manscdp.build("Notify", "Catalog", 9, DEV, catalog_notify(b, "DEL"))
            resp = await fake.send(fake._request("NOTIFY", body, manscdp.CONTENT_TYPE))
            assert resp.status == 403
            assert (await fake.send_manscdp("Notify", "Catalog", catalog_notify(forged, "ADD"))).status == 403
            assert await fake.alarm(a, description="forged") == 403
            assert rejected(gw, "foreign_source") == 3
            # the real device's own, sent after them, are applied: the forged ones never were
            assert (await sim.send_manscdp("Notify", "Catalog", catalog_notify(real, "ADD"))).status == 200
            assert await sim.alarm(a, description="real") == 200
            first = await asyncio.wait_for(alarms.get(), 5)
        assert isinstance(first, Alarm) and first.description == "real"
        await until(lambda: real in gw.registry.channels)
        assert forged not in gw.registry.channels and b in gw.registry.channels
    finally:
        await fake.stop(unregister=False)
        await sim.stop()


async def test_r18_sip_only_an_authenticated_register_moves_the_binding(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    old = await start_sim(gw)
    moved = await start_sim(gw)  # the same device, registered again with its password from a new socket
    try:
        dev = gw.gb28181.server.devices.get(DEV)
        assert dev.online and dev.peer.addr == (moved.endpoint.host, moved.endpoint.port)
        assert await moved.keepalive() == 200
        assert await old.keepalive() == 403  # the old address lost the device with that REGISTER
    finally:
        await old.stop(unregister=False)
        await moved.stop()


async def test_r18_sip_challenge_mode_accepts_a_fresh_digest_without_moving_the_binding(make_gateway) -> None:
    gw = await make_gateway(sip=sip(foreign_source="challenge"))
    sim = await start_sim(gw)
    rebound = await impostor(gw)  # the device itself after a NAT rebinding: it knows the password
    guesser = await impostor(gw, password="not-the-password")
    try:
        dev = gw.gb28181.server.devices.get(DEV)
        bound = dev.peer
        assert await rebound.keepalive() == 200  # 401, then the same MESSAGE with a digest
        assert gw.metrics.value("vsgw_gb28181_foreign_source_total", result="authenticated") == 1
        assert rejected(gw, "foreign_source") == 1  # the first, unauthenticated try
        assert dev.peer == bound
        assert await guesser.keepalive() == 401
        assert rejected(gw, "wrong_password") == 1
        # a request without a digest is answered with a challenge, never accepted
        resp = await guesser.endpoint.request(guesser._request("MESSAGE", manscdp.build(
            "Notify", "Keepalive", 1, DEV, [("Status", "OK")]), manscdp.CONTENT_TYPE), guesser.server)
        assert resp.status == 401 and 'realm="3402000000"' in resp.get("www-authenticate")
    finally:
        await rebound.stop(unregister=False)
        await guesser.stop(unregister=False)
        await sim.stop()


async def test_r18_sip_lost_tcp_connection_ends_the_registration(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw, transport="tcp")
    dev = gw.gb28181.server.devices.get(DEV)
    await sim.stop(unregister=False)  # the connection closes; the device said nothing
    await until(lambda: not dev.online)
    assert gw.metrics.value("vsgw_gb28181_device_state_total", state="offline", reason="connection closed") == 1
    again = await impostor(gw, "tcp")  # a new connection, even from the same device, must register first
    try:
        assert await again.keepalive() == 403
        await again.register()
        assert dev.online and await again.keepalive() == 200
    finally:
        await again.stop()


async def test_r18_sip_media_status_from_a_channel_id_reaches_its_device(make_gateway) -> None:
    """Hikvision sends a playback's end of file From the channel: it is the device speaking, over
    its binding, so the playback ends on it (it used to get 403 Register First)."""
    gw = await make_gateway(sip=sip(silence_timeout=120))  # only MediaStatus 121 can end it soon
    sim = await start_sim(gw, quirks=Quirks(channel_from=True))
    cid = sim.cfg.channel_ids()[0]
    fake = await impostor(gw, quirks=Quirks(channel_from=True))
    try:
        await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
        # the channel's ID from another address is refused like the device's
        assert (await fake.send_manscdp("Notify", "MediaStatus", [("NotifyType", 121)], device_id=cid)).status == 403
        assert rejected(gw, "foreign_source") == 1
        end = datetime.now().replace(microsecond=0)
        units = 0
        async with asyncio.timeout(30):
            async for _unit in gw.gb28181.open_playback(TEST_READER, cid, end - timedelta(minutes=10), end):
                units += 1
        assert 5 <= units <= sim.cfg.playback_seconds * sim.cfg.fps
        assert rejected(gw, "unregistered") == 0
    finally:
        await fake.stop(unregister=False)
        await sim.stop()
