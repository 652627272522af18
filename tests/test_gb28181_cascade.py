"""GB/T 28181 up-cascade, one vsgw registering to another over real UDP (R1, R2, R4, R18): the lower
registers with digest and keeps alive; the upper's Catalog query gets exactly the cameras the lower's
gate lets the superior's subject list, minus the share list's exclusions, with no confidential field;
the upper going away and coming back is survived with backoff; a wrong password fails with its reason
and backs off; only the superior may ask; the state is on the API for platform administrators only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from adapters.base import Channel
from adapters.gb28181 import manscdp
from adapters.gb28181.cascade import CascadeState, Superior
from adapters.gb28181.cascade.catalog import Org, items, packets
from adapters.gb28181.catalog import TreeNode
from adapters.gb28181.sip import SipMessage, new_branch, new_call_id, new_tag
from adapters.gb28181.transport import Endpoint, Peer
from gateway.app import Gateway
from gateway.bus import Subscription
from gateway.policy import Resource

from .conftest import TOKEN, free_port, gateway_config, synthetic
from .people import FAST_ARGON2, person, trail
from .test_gb28181_signalling import DEV, sip, start_sim, until

UPPER = "34020000002000000001"
LOWER = "34020000002000000002"
SHARED = "34020000001310000011"  # level 1: a clearance-2 sharing-tier superior may list it
SECRET = "34020000001310000012"  # level 4: above the superior's clearance
EXCLUDED = "34020000001310000013"  # level 1, but on the superior's exclude list
LOBBY = "lobby"  # not a GB/T 28181 ID: a superior could not address it
LEVELS = {SECRET: 4}
SIPP = Path(__file__).parent / "sipp"


def superior(port: int, **kw: Any) -> dict[str, Any]:
    return {"server_id": UPPER, "host": "127.0.0.1", "port": port, "password": "12345678", "tier": "sharing",
            "clearance": 2, "exclude": [EXCLUDED], "keepalive_interval": 0.4, "keepalive_misses": 2,
            "request_timeout": 1.0, "retry_min": 0.3, "retry_max": 1.2, **kw}


@pytest_asyncio.fixture
async def lower_gateway(tmp_path) -> AsyncIterator[Any]:
    """``gw, events = await lower(port, **superior_kw)``: a started lower vsgw whose cameras have the
    levels of :data:`LEVELS` (1 otherwise), and its ``cascade.state`` events from before the start."""
    made: list[tuple[Gateway, Subscription]] = []

    async def make(port: int, cameras: list[str] | None = None, **kw: Any) -> tuple[Gateway, Subscription]:
        sections: dict[str, Any] = {"cascade": {"local_id": LOWER, "superiors": [superior(port, **kw.pop("sup", {}))]},
                                    **kw}
        cams = [SHARED, SECRET, EXCLUDED, LOBBY] if cameras is None else cameras
        if cams:
            sections["cameras"] = [synthetic(c, name=f"摄像机 {c[-2:]}") for c in cams]
        gw = Gateway(gateway_config(tmp_path / f"lower{len(made)}", **sections))
        gw.resource_resolver = lambda cid: Resource("camera", cid, security_level=LEVELS.get(cid, 1))
        events = gw.bus.subscribe("cascade.")
        await gw.start()
        made.append((gw, events))
        return gw, events

    yield make
    for gw, events in reversed(made):
        events.close()
        await gw.stop()


async def upper_gateway(tmp_path, port: int, name: str) -> Gateway:
    gw = Gateway(gateway_config(tmp_path / name, sip=sip(port=port)))
    await gw.start()
    return gw


async def state(events: Subscription, want: str, timeout: float = 10.0) -> CascadeState:
    """The next ``cascade.state`` event into ``want``."""
    async with asyncio.timeout(timeout):
        while True:
            event = await events.get()
            assert isinstance(event, CascadeState)
            if event.state == want:
                return event


async def api(gw: Gateway, path: str, token: str = TOKEN) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{gw.http_port}{path}", headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_r2_superior_gets_exactly_what_the_gate_and_share_list_allow_and_the_upper_lists_it(
        make_gateway, lower_gateway) -> None:
    upper = await make_gateway(sip=sip())
    lower, events = await lower_gateway(upper.gb28181.server.port)
    registered = await state(events, "registered")
    assert registered.superior == UPPER and registered.reason == "expires in 3600 s"
    await until(lambda: SHARED in upper.registry.channels)
    assert {c for c in upper.registry.channels} == {SHARED}  # the level-4, the excluded and the lobby one withheld
    assert upper.registry.channels[SHARED].name == "摄像机 11"  # GB18030 both ways
    dev = upper.gb28181.server.devices.get(LOWER)
    assert dev.online and dev.registered and dev.peer.addr[1] == lower.cascade[0].endpoint.port
    await until(lambda: dev.info.get("devicename") == "vsgw")
    assert dev.info["channel"] == "1"  # DeviceInfo counts what this superior may list
    tree = {n.id: n for n in upper.gb28181.tree(LOWER)}
    assert {i: (n.kind, n.parent_id) for i, n in tree.items()} == {
        "34": ("region", None), "3402": ("region", "34"), "340200": ("region", "3402"), SHARED: ("camera", LOWER)}
    # the keepalives reach the upper
    await until(lambda: lower.metrics.value("vsgw_cascade_keepalives_total", superior=UPPER, result="ok") >= 2)
    assert upper.metrics.value("vsgw_gb28181_keepalive_total", result="ok") >= 2
    # what the gate was asked, as the superior, is in the lower's audit trail
    subject = f"superior:{UPPER}"
    asked = await trail(lower, actor=subject, resource=f"system:{LOWER}", decision="allow")
    assert {r.extra["cmd"] for r in asked} == {"Catalog", "DeviceInfo"} and {r.extra["egress"] for r in asked} == {"sip"}
    (answered,) = await trail(lower, actor=subject, action="cascade.catalog")
    assert (answered.extra["cameras"], answered.extra["withheld_by_gate"], answered.extra["withheld_by_share_list"],
            answered.extra["unaddressable"], answered.extra["delivered"]) == (1, 1, 1, 1, True)
    await lower.policy.flush()
    denied = await trail(lower, actor=subject, action="list", resource="camera:*", decision="deny")
    assert sum(r.extra["aggregate"] for r in denied) >= 1  # the level-4 camera's refusals
    status, body = await api(lower, "/api/cascade/superiors")
    assert status == 200
    (row,) = body["superiors"]
    assert (row["state"], row["server_id"], row["local_id"], row["expires"]) == ("registered", UPPER, LOWER, 3600)
    assert row["last_keepalive"] and row["next_refresh"] > row["registered_at"] and "password" not in str(body)
    assert row["subject"] == {"id": subject, "tier": "sharing", "clearance": 2, "unit": None, "include": [],
                              "exclude": [EXCLUDED]}
    text = lower.metrics.render()
    assert f'vsgw_cascade_state{{superior="{UPPER}",state="registered"}} 1' in text
    assert f'vsgw_cascade_registrations_total{{result="ok",superior="{UPPER}"}} 1' in text


async def test_r4_confidential_catalogue_fields_of_a_gb_device_never_go_up(make_gateway, lower_gateway, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="adapters.gb28181.server")
    upper = await make_gateway(sip=sip())
    lower, events = await lower_gateway(upper.gb28181.server.port, cameras=[], sip=sip())
    sim = await start_sim(lower, channels=2)
    try:
        ids = sim.cfg.channel_ids()
        await until(lambda: all(c in lower.registry.channels for c in ids))
        below = lower.registry.channels[ids[0]]
        assert (below.extra["address"], below.manufacturer, below.model) == ("sim", "vsgw", "gb-sim")
        await state(events, "registered")
        # the upper asks again (its first query may have come before the device's catalog was in)
        result = await upper.gb28181.sync_catalog(LOWER)
        assert (result.items, result.complete) == (5, True)  # three regions and the two cameras
        assert all(c in upper.registry.channels for c in ids)
        for cid in ids:
            up = upper.registry.channels[cid]
            assert (up.extra["address"], up.manufacturer, up.model) == ("", None, None)
            assert up.civil_code == DEV[:6] and up.parent == LOWER
        bodies = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"GB MESSAGE from {LOWER}:")]
        catalogs = [b for b in bodies if "<CmdType>Catalog</CmdType>" in b]
        assert catalogs
        for body in catalogs:
            for tag in ("<Address>", "<Longitude>", "<Latitude>", "<IPAddress>", "<Port>", "<Model>", "<Manufacturer>"):
                assert tag not in body, tag
    finally:
        await sim.stop()


async def test_r1_lower_re_registers_with_backoff_when_the_superior_goes_away_and_comes_back(
        tmp_path, lower_gateway) -> None:
    port = free_port()
    upper = await upper_gateway(tmp_path, port, "up1")
    restarted: Gateway | None = None
    try:
        lower, events = await lower_gateway(port)
        await state(events, "registered")
        await until(lambda: SHARED in upper.registry.channels)
        await upper.stop()
        lost = await state(events, "registering")
        assert lost.reason == "the superior did not answer 2 keepalives in a row"
        first, second = await state(events, "failed"), await state(events, "failed")
        assert first.reason == second.reason == "no answer to REGISTER within 1 s"
        assert first.next_attempt - first.time >= 0.3 - 0.01  # retry_min
        assert second.next_attempt - second.time >= 0.6 - 0.01  # doubled
        assert second.time - first.time >= 0.3 + 1.0 - 0.05  # the wait, then a REGISTER's whole timeout
        restarted = await upper_gateway(tmp_path, port, "up2")
        await state(events, "registered")
        await until(lambda: SHARED in restarted.registry.channels)
        assert restarted.gb28181.server.devices.get(LOWER).online
        # a quick restart: the new upper does not know us and refuses the keepalive; we register again at once
        await restarted.stop()
        restarted = await upper_gateway(tmp_path, port, "up3")
        again = await state(events, "registering")
        assert again.reason in ("the superior refused a keepalive: 403 Register First",
                                "the superior did not answer 2 keepalives in a row")
        await state(events, "registered")
        await until(lambda: SHARED in restarted.registry.channels)
        status = lower.cascade[0].status
        assert status.registrations == 3 and status.failures >= 2 and status.consecutive_failures == 0
        audit = [r.action for r in await trail(lower, resource=f"superior:{UPPER}")]
        assert audit[:3] == ["cascade.registered", "cascade.failed", "cascade.failed"]
        assert audit.count("cascade.registered") == 3
    finally:
        if restarted is not None:
            await restarted.stop()
        with contextlib.suppress(Exception):
            await upper.stop()


async def test_r18_wrong_password_fails_with_the_reason_and_backs_off(make_gateway, lower_gateway) -> None:
    upper = await make_gateway(sip=sip())
    lower, events = await lower_gateway(upper.gb28181.server.port, sup={"password": "not-the-password"})
    failures = [await state(events, "failed") for _ in range(3)]
    reason = "the superior refused the registration: 403 Forbidden (wrong password, or our ID is unknown there)"
    assert {f.reason for f in failures} == {reason}
    for event, base in zip(failures, (0.3, 0.6, 1.2), strict=True):
        assert event.next_attempt - event.time >= base - 0.01
    # one REGISTER exchange per attempt reached the upper: no loop hidden behind the backoff
    assert upper.metrics.value("vsgw_gb28181_register_total", result="wrong_password") == 3
    assert lower.cascade[0].status.attempts == 3
    assert upper.gb28181.server.devices.get(LOWER) is None and not upper.registry.channels
    status, body = await api(lower, "/api/cascade/superiors")
    (row,) = body["superiors"]
    assert status == 200 and row["state"] == "failed" and row["reason"] == reason and row["next_attempt"]
    assert "not-the-password" not in str(body)
    assert lower.metrics.value("vsgw_cascade_failures_total", superior=UPPER, kind="refused") == 3


async def test_r18_only_the_superior_may_query_the_cascade_endpoint(make_gateway, lower_gateway) -> None:
    upper = await make_gateway(sip=sip())
    lower, events = await lower_gateway(upper.gb28181.server.port)
    await state(events, "registered")
    stranger = Endpoint(lambda msg, peer: asyncio.sleep(0))
    await stranger.listen("127.0.0.1", 0, tcp=False)
    try:
        link = lower.cascade[0]
        msg = SipMessage(method="MESSAGE", uri=f"sip:{LOWER}@127.0.0.1:{link.endpoint.port}")
        msg.add("Via", f"SIP/2.0/UDP 127.0.0.1:{stranger.port};rport;branch={new_branch()}")
        msg.add("From", f"<sip:{UPPER}@3402000000>;tag={new_tag()}")  # claims to be the superior
        msg.add("To", f"<sip:{LOWER}@3402000000>")
        msg.add("Call-ID", new_call_id("127.0.0.1"))
        msg.add("CSeq", "1 MESSAGE")
        msg.add("Content-Type", manscdp.CONTENT_TYPE)
        msg.body = manscdp.build("Query", "Catalog", 7, LOWER)
        resp = await stranger.request(msg, Peer("udp", ("127.0.0.1", link.endpoint.port)), timeout=3)
        assert resp.status == 403
        assert lower.metrics.value("vsgw_cascade_rejected_total", superior=UPPER, reason="foreign_source") == 1
        assert lower.metrics.value("vsgw_cascade_requests_total", superior=UPPER, cmd="catalog") == 1  # the upper's own
    finally:
        await stranger.close()


async def test_r2_cascade_state_is_for_platform_administrators_only(make_gateway, lower_gateway) -> None:
    upper = await make_gateway(sip=sip())
    lower, events = await lower_gateway(upper.gb28181.server.port, identity=FAST_ARGON2)
    await state(events, "registered")
    admin = await person(lower, "wu", "system_admin")
    officer = await person(lower, "li", "police_officer", clearance=5, tier="police")
    department = await person(lower, "chen", "department_admin", clearance=3, tier="police", unit="u-east")
    status, body = await api(lower, "/api/cascade/superiors", admin)
    assert status == 200 and body["superiors"][0]["state"] == "registered"
    for token in (officer, department):
        status, body = await api(lower, "/api/cascade/superiors", token)
        assert status == 403 and body["error"] == "forbidden"
    denied = await trail(lower, action="manage", resource="system:cascade", decision="deny")
    assert {r.actor for r in denied} == {"user:li", "user:chen"}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_registration_is_refreshed_before_the_granted_expiry(make_gateway, lower_gateway, transport) -> None:
    upper = await make_gateway(sip=sip(register_expires_min=1, register_expires_max=2))  # grants 2 s
    lower, events = await lower_gateway(upper.gb28181.server.port, sup={"transport": transport})
    assert (await state(events, "registered")).reason == "expires in 2 s"
    link = lower.cascade[0]
    await until(lambda: lower.metrics.value("vsgw_cascade_registrations_total", superior=UPPER, result="refresh") >= 2)
    dev = upper.gb28181.server.devices.get(LOWER)
    assert dev.registered and dev.online and dev.peer.transport == transport
    assert link.status.state == "registered" and link.status.failures == 0  # never lapsed in between
    assert lower.metrics.value("vsgw_cascade_transitions_total", superior=UPPER, state="registering") == 1
    await until(lambda: SHARED in upper.registry.channels)  # queries come back over the same transport


async def test_r11_record_info_from_the_superior_is_answered_from_the_recordings_under_view_playback(
        make_gateway, lower_gateway) -> None:
    upper = await make_gateway(sip=sip())
    lower, events = await lower_gateway(upper.gb28181.server.port, cameras=[SHARED], recording={
        "cameras": [SHARED], "segment_seconds": 0.5, "min_free_bytes": 0, "fsync": False})
    await state(events, "registered")
    await until(lambda: SHARED in upper.registry.channels)
    end = datetime.now(UTC) + timedelta(minutes=1)
    start = end - timedelta(hours=1)
    async with asyncio.timeout(10):
        while not (ranges := await lower.recordings.ranges(SHARED, start, end)) or \
                (ranges[0][1] - ranges[0][0]).total_seconds() < 1:
            await asyncio.sleep(0.1)  # the recorder closes its first segments
    found = await upper.gb28181.record_info(SHARED, start, end)
    assert found.complete and found.sum_num == len(found.records) >= 1
    first = found.records[0]
    assert abs((first.start - ranges[0][0]).total_seconds()) < 1  # second resolution, the same zone both ways
    assert first.type == "time" and first.file_path.startswith(f"{SHARED}/")
    (asked,) = await trail(lower, actor=f"superior:{UPPER}", action="view_playback")
    assert asked.resource == f"camera:{SHARED}" and asked.decision == "allow" and asked.extra["egress"] == "sip"
    assert asked.extra["cmd"] == "RecordInfo" and asked.extra["start"] and asked.extra["end"]


def _channels(n: int) -> list[Channel]:
    return [Channel(f"3402000000131{i:07d}", f"东门 {i} 号", "synthetic", online=i % 2 == 0, ptz=i % 3 == 0,
                    extra={"address": "中山路 1 号", "ip": "10.0.0.9"}) for i in range(n)]


def test_r2_catalog_packets_carry_sumnum_num_and_stay_under_the_size_bound() -> None:
    sup = Superior(server_id=UPPER, host="127.0.0.1", password="x", local_id=LOWER, catalog_items_per_packet=20,
                   max_body_bytes=2048)
    entries = items(sup, _channels(45), Org())
    bodies = packets(sup, "Catalog", 9, LOWER, entries, "DeviceList")
    assert len(entries) == 45 + 3  # the cameras and the region chain of the platform's own civil code
    seen: list[str] = []
    for body in bodies:
        assert len(body) <= 2048 and body.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
        msg = manscdp.parse(body)
        lst = msg.root.find("devicelist")
        assert (msg.sn, msg.device_id, msg.root.int("sumnum")) == (9, LOWER, 48)
        assert int(lst.attrs["num"]) == len(lst.findall("item")) <= 20
        seen += [i.get("deviceid") for i in lst.findall("item")]
        assert "中山路" not in body.decode("gb18030") and "10.0.0.9" not in body.decode("gb18030")
    assert sorted(seen) == sorted(e[0][1] for e in entries) and len(bodies) > 3  # the byte bound split them
    names = {i.get("deviceid"): i for b in bodies for i in manscdp.parse(b).root.find("devicelist").findall("item")}
    assert names["34020000001310000001"].get("name") == "东门 1 号"
    assert names["34020000001310000001"].get("info/ptztype") == "3" and names["34020000001310000001"].get("status") == "OFF"
    assert packets(sup, "Catalog", 1, LOWER, [], "DeviceList") == [
        manscdp.build("Response", "Catalog", 1, LOWER, [("SumNum", 0), ('DeviceList Num="0"', [])], encoding="GB18030")]


def test_r2_catalog_sends_the_groups_above_a_gb_channel_parents_first() -> None:
    sup = Superior(server_id=UPPER, host="127.0.0.1", password="x", local_id=LOWER, charset="UTF-8")
    group, org, nvr = "34020000002150000001", "34020000002160000001", "34020000001180000001"
    tree = {group: TreeNode(group, "治安分组", "business_group", None, None, "340200", True, nvr),
            org: TreeNode(org, "东区", "virtual_org", group, group, "340200", True, nvr)}
    cam = Channel("34020000001310000001", "东门", "gb28181", civil_code="340203", parent=org, extra={"device": nvr})
    direct = Channel("34020000001310000002", "西门", "gb28181", civil_code="340203", parent=nvr, extra={"device": nvr})
    entries = items(sup, [cam, direct], Org(lambda d: list(tree.values()) if d == nvr else [], lambda d: "录像机"))
    got = [(dict(e)["DeviceID"], dict(e).get("ParentID"), dict(e).get("BusinessGroupID")) for e in entries]
    assert got == [("34", None, None), ("3402", "34", None), ("340203", "3402", None),
                   (group, LOWER, None), (org, group, group), (nvr, LOWER, None),
                   (cam.id, org, group), (direct.id, nvr, None)]
    body = packets(sup, "Catalog", 1, LOWER, entries, "DeviceList")[0]
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>') and "录像机".encode() in body


@pytest.mark.parametrize("password", ["sipp-pw", "not-it"])
async def test_r1_sipp_as_the_superior_verifies_our_digest_and_gets_its_catalog(lower_gateway, password) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SIPP / "superior.xml"), "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
        "-m", "2", "-nostdin", "-timeout", "20s",  # two calls: the registration and the Catalog Response
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        # sipp may bind after our first REGISTER: that one times out and the backoff brings the next
        lower, events = await lower_gateway(port, sup={"password": password, "keepalive_interval": 60.0})
        if password != "sipp-pw":
            failed = await state(events, "failed")
            while "403" not in failed.reason:
                failed = await state(events, "failed")
            assert failed.reason.startswith("the superior refused the registration: 403 Forbidden")
            return
        await state(events, "registered")
        rc = await asyncio.wait_for(proc.wait(), 20)
        err = (await proc.stderr.read()).decode(errors="replace")
        assert rc == 0, err[-2000:]  # sipp's checks: SN 77 answered, the level-4 camera never named
        (answered,) = await trail(lower, actor=f"superior:{UPPER}", action="cascade.catalog")
        assert (answered.extra["sn"], answered.extra["cameras"], answered.extra["delivered"]) == (77, 1, True)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
