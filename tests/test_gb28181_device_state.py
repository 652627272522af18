"""R15/R18: GB/T 28181 registrations and catalogs survive a gateway restart. A second gateway on the
same database and SIP port lists the device's channels at once (the wall is not emptied), takes the
device back online at its next keepalive from its registered address without a new REGISTER, and
still refuses that keepalive from anywhere else. SQLite file and PostgreSQL."""

from __future__ import annotations

import aiohttp

from gateway.app import Gateway

from .conftest import auth, free_port, gateway_config
from .test_gb28181_signalling import DEV, sip, start_sim, until
from .test_r18_sip_transport_binding import impostor


async def first_gateway(tmp_path, url: str, port: int, **sip_kw) -> Gateway:
    gw = Gateway(gateway_config(tmp_path / "first", sip=sip(port=port, **sip_kw), storage={"url": url}))
    await gw.start()
    return gw


async def camera_ids(gw) -> list[str]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{gw.http_port}/api/cameras", headers=auth()) as resp:
        assert resp.status == 200
        return [c["id"] for c in (await resp.json())["cameras"]]


async def test_r15_registration_and_channels_survive_a_gateway_restart(make_gateway, tmp_path, db_url) -> None:
    port = free_port()
    first = await first_gateway(tmp_path, db_url, port)
    try:
        sim = await start_sim(first, channels=2)
        ids = sim.cfg.channel_ids()
        await until(lambda: all(cid in first.registry.channels for cid in ids))
        await until(lambda: first.gb28181.server.devices.get(DEV).info.get("model") == "gb-sim")
    finally:
        await first.stop()  # the device does not notice: it keeps its socket and its registration
    gw = await make_gateway(sip=sip(port=port), storage={"url": db_url})
    fake = await impostor(gw)
    try:
        assert sorted(await camera_ids(gw)) == ids  # listed at start, before the device said anything
        dev = gw.gb28181.server.devices.get(DEV)
        assert not dev.online and dev.registered and dev.info == {"manufacturer": "vsgw", "model": "gb-sim"}
        assert dev.peer.addr == (sim.endpoint.host, sim.endpoint.port)
        assert await fake.keepalive() == 403  # the stored binding holds after the restart
        assert await sim.keepalive() == 200  # no REGISTER in between
        await until(lambda: all(gw.registry.channels[cid].online for cid in ids))
        assert dev.online and gw.metrics.value("vsgw_gb28181_register_total", result="ok") == 0
        assert gw.metrics.value("vsgw_gb28181_device_state_total", state="online", reason="keepalive") == 1
        assert gw.metrics.value("vsgw_gb28181_rejected_total", reason="foreign_source") == 1
    finally:
        await fake.stop(unregister=False)
        await sim.stop()


async def test_r15_unregistered_device_is_not_revived_by_a_keepalive_after_restart(make_gateway, tmp_path,
                                                                                   db_url) -> None:
    port = free_port()
    first = await first_gateway(tmp_path, db_url, port)
    try:
        sim = await start_sim(first)
        cid = sim.cfg.channel_ids()[0]
        await until(lambda: cid in first.registry.channels)
        await sim.register(expires=0)
    finally:
        await first.stop()
    gw = await make_gateway(sip=sip(port=port), storage={"url": db_url})
    try:
        assert cid in gw.registry.channels and not gw.registry.channels[cid].online
        assert not gw.gb28181.server.devices.get(DEV).registered
        assert await sim.keepalive() == 403  # Register First
        await sim.register()
        await until(lambda: gw.registry.channels[cid].online)
    finally:
        await sim.stop()


async def test_r15_catalog_deletions_are_stored(make_gateway, tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gb.db'}"
    port = free_port()
    first = await first_gateway(tmp_path, url, port)
    try:
        sim = await start_sim(first, channels=2)
        a, b = sim.cfg.channel_ids()
        await until(lambda: b in first.registry.channels)
        await sim.send_manscdp("Notify", "Catalog", [("SumNum", 1), ('DeviceList Num="1"', [
            ("Item", [("DeviceID", b), ("Event", "DEL")])])])
        await until(lambda: b not in first.registry.channels)
    finally:
        await first.stop()
    gw = await make_gateway(sip=sip(port=port), storage={"url": url})
    try:
        assert [ch.id for ch in gw.gb28181.channels()] == [a]
    finally:
        await sim.stop()


async def test_r15_tcp_device_registers_again_after_restart_its_channels_listed_meanwhile(make_gateway,
                                                                                         tmp_path) -> None:
    """A TCP binding is the connection, which the restart closed: the channels come back at once,
    the device is told to register (not taken for an impostor) on its new connection."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'gb.db'}"
    port = free_port()
    first = await first_gateway(tmp_path, url, port)
    try:
        sim = await start_sim(first, transport="tcp")
        cid = sim.cfg.channel_ids()[0]
        await until(lambda: cid in first.registry.channels)
    finally:
        await first.stop()
    gw = await make_gateway(sip=sip(port=port), storage={"url": url})
    try:
        assert cid in gw.registry.channels and not gw.registry.channels[cid].online
        await sim.open()  # the device reconnects
        assert await sim.keepalive() == 403
        assert gw.metrics.value("vsgw_gb28181_keepalive_total", result="unregistered") == 1
        assert gw.metrics.value("vsgw_gb28181_rejected_total", reason="foreign_source") == 0
        await sim.register()
        await until(lambda: gw.registry.channels[cid].online)
    finally:
        await sim.stop()
