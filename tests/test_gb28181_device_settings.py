"""Per-device GB/T 28181 settings through ``PATCH /api/gb28181/devices/{id}/settings`` and
``[[sip.devices]]`` (R1, R15, R18): the INVITE's media transport, the body charset, the keepalive
deadline and the time zone take effect for that device only, are stored across a restart (SQLite
and PostgreSQL), fall back to the configuration when cleared, and bad values are 400s naming the field."""

from __future__ import annotations

import asyncio

import pytest

from adapters.gb28181.simulator import Quirks
from gateway.app import Gateway

from .conftest import free_port, gateway_config
from .test_gb28181_device_api import BASE, call
from .test_gb28181_play import TEST_READER, decoded_frames
from .test_gb28181_signalling import DEV, sip, start_sim, until

GB_NAME = "帷搬啊"  # GB18030 bytes that also read as valid UTF-8 ("ᡰᰡ"): the detector guesses wrong


@pytest.mark.parametrize(("how", "transport"), [("api", "tcp-passive"), ("config", "tcp-active")])
async def test_r1_per_device_media_transport_is_what_the_invite_offers_and_uses(make_gateway, how,
                                                                               transport) -> None:
    entries = [{"id": DEV, "media_transport": transport}] if how == "config" else []
    gw = await make_gateway(sip=sip(media_transport="udp", devices=entries))
    sim = await start_sim(gw)
    cid = sim.cfg.channel_ids()[0]
    try:
        await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
        if how == "api":
            status, body, _ = await call(gw, "PATCH", f"{BASE}/{DEV}/settings", json={"media_transport": transport})
            assert status == 200 and body["effective"]["media_transport"] == transport
        with gw.hub.subscribe(TEST_READER, cid, name="test", limits=gw.reader_limits) as reader:
            async with asyncio.timeout(15):
                first = await anext(aiter(reader))
            (inv,) = gw.gb28181.player.dialogs.values()
            assert (inv.media.transport, inv.media.connections) == (transport, 1)  # the media came over TCP
        assert first.codec == "h264" and await decoded_frames(gw, cid, want=5) >= 5
        offer = (await sim.wait_for(lambda e: e[0] == "INVITE"))[2]
        assert offer.transport == transport  # a=setup:passive|active in the SDP
    finally:
        await sim.stop()


async def test_r1_per_device_charset_decodes_names_the_detector_reads_wrongly(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw, name=GB_NAME)
    cid = sim.cfg.channel_ids()[0]
    try:
        await until(lambda: cid in gw.registry.channels)
        assert gw.registry.channels[cid].name == f"{GB_NAME.encode('gb18030').decode()} 1"  # mis-detected as UTF-8
        status, body, _ = await call(gw, "PATCH", f"{BASE}/{DEV}/settings", json={"charset": "gb18030"})
        assert status == 200 and body["settings"]["charset"] == "GB18030"
        assert (await call(gw, "POST", f"{BASE}/{DEV}/catalog"))[0] == 200
        assert gw.registry.channels[cid].name == f"{GB_NAME} 1"
        assert (await call(gw, "GET", f"{BASE}/{DEV}"))[1]["name"] == GB_NAME  # DeviceInfo too
    finally:
        await sim.stop()


async def test_r15_per_device_keepalive_timeout_takes_a_silent_device_offline(make_gateway) -> None:
    gw = await make_gateway(sip=sip(keepalive_interval=60.0))
    sim = await start_sim(gw, quirks=Quirks(no_keepalive=True))
    dev = gw.gb28181.server.devices.get(DEV)
    try:
        assert dev.online
        status, body, _ = await call(gw, "PATCH", f"{BASE}/{DEV}/settings",
                                     json={"keepalive_interval": 1, "keepalive_timeout": 1.5})
        assert status == 200 and body["effective"]["keepalive_timeout"] == 1.5
        await until(lambda: not dev.online, timeout=5)  # 180 s under the [sip] defaults
        assert gw.metrics.value("vsgw_gb28181_device_state_total", state="offline", reason="keepalive timeout") == 1
        assert await sim.keepalive() == 200
        await until(lambda: dev.online)
    finally:
        await sim.stop()


async def test_r15_settings_survive_a_restart_over_the_config_entry_and_clear_back_to_it(make_gateway, tmp_path,
                                                                                       db_url) -> None:
    port = free_port()
    entries = [{"id": DEV, "time_zone": "Europe/Berlin", "keepalive_interval": 30, "media_transport": "tcp-active"}]
    first = Gateway(gateway_config(tmp_path / "first", sip=sip(port=port, devices=entries), storage={"url": db_url}))
    await first.start()
    try:
        sim = await start_sim(first)
        status, body, _ = await call(first, "PATCH", f"{BASE}/{DEV}/settings",
                                     json={"media_transport": "tcp-passive", "charset": "UTF-8", "time_zone": "UTC"})
        assert status == 200, body
    finally:
        await first.stop()
    gw = await make_gateway(sip=sip(port=port, devices=entries), storage={"url": db_url})
    try:
        status, body, _ = await call(gw, "GET", f"{BASE}/{DEV}")
        assert body["settings"] == {"media_transport": "tcp-passive", "charset": "UTF-8", "keepalive_interval": None,
                                    "keepalive_timeout": None, "time_zone": "UTC"}
        assert body["effective"] == {"media_transport": "tcp-passive", "charset": "UTF-8", "keepalive_interval": 30.0,
                                     "keepalive_timeout": 90.0, "time_zone": "UTC"}
        assert gw.gb28181.server.devices.get(DEV).charset == "UTF-8"  # applied at restore, before any REGISTER
        status, body, _ = await call(gw, "PATCH", f"{BASE}/{DEV}/settings",
                                     json={"media_transport": None, "time_zone": None})
        assert status == 200
        assert (body["effective"]["media_transport"], body["effective"]["time_zone"]) == ("tcp-active", "Europe/Berlin")
        assert body["settings"]["charset"] == "UTF-8"  # untouched fields stay
    finally:
        await sim.stop()


async def test_r18_bad_settings_are_400_naming_the_field_and_unknown_devices_404(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw)
    path = f"{BASE}/{DEV}/settings"
    try:
        for patch, field in (({"media_transport": "sctp"}, "media_transport"), ({"charset": "latin-1"}, "charset"),
                             ({"keepalive_interval": 0}, "keepalive_interval"),
                             ({"keepalive_interval": True}, "keepalive_interval"),
                             ({"keepalive_timeout": "60"}, "keepalive_timeout"),
                             ({"keepalive_interval": 20, "keepalive_timeout": 10}, "keepalive_timeout"),
                             ({"keepalive_timeout": 50}, "keepalive_timeout"),  # under the 60 s [sip] interval
                             ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"), ({"password": "x"}, "password")):
            status, body, _ = await call(gw, "PATCH", path, json=patch)
            assert (status, body.get("field")) == (400, field), (patch, body)
        assert gw.gb28181.server.devices.get(DEV).settings.empty
        status, body, _ = await call(gw, "PATCH", path, data=b"[1]", headers={"Content-Type": "application/json"})
        assert status == 400 and body["error"] == "bad_json"
        assert gw.metrics.value("vsgw_http_rejected_total", status="400") == 10
        assert (await call(gw, "PATCH", f"{BASE}/34020000001320000099/settings", json={}))[0] == 404
        assert (await call(gw, "POST", f"{BASE}/34020000001320000099/catalog"))[0] == 404
        assert (await call(gw, "GET", f"{BASE}/34020000001320000099/status"))[0] == 404
        assert (await call(gw, "GET", "/healthz"))[0] == 200  # still serving
    finally:
        await sim.stop()
