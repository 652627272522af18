"""GB/T 28181 field quirks against the running gateway over real UDP (R1, R15): catalog bodies with
bare ``&``/``<`` (Hikvision), channels without PTZType, two devices claiming one channel ID,
organisation-tree and non-camera catalog items, and RecordInfo in the device's local time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest

from adapters.gb28181 import manscdp, ptz
from adapters.gb28181.simulator import SimConfig, Simulator
from adapters.gb28181.sip import SipMessage, response
from adapters.gb28181.transport import Peer
from gateway.bus import ChannelConflict
from tests.conftest import auth, synthetic

from .test_gb28181_signalling import DEV, sip

CAM1, CAM2 = "34020000001310000001", "34020000001320000002"


class RawCatalogDevice(Simulator):
    """A simulated device that answers Catalog with the exact bytes a field device sent."""

    def __init__(self, cfg: SimConfig, packets: list[bytes]) -> None:
        super().__init__(cfg)
        self.packets = packets
        self.catalog_answers: list[int] = []  # the gateway's status for each packet

    async def _answer_catalog(self, sn: int) -> None:
        for body in self.packets:
            req = self._request("MESSAGE", body.replace(b"{SN}", str(sn).encode()), manscdp.CONTENT_TYPE)
            resp = await self.endpoint.request(req, self.server)
            self.catalog_answers.append(resp.status or 0)
        await self._note("SENT", "Catalog", list(self.catalog_answers))


def catalog_body(items: str, sum_num: int, encoding: str = "GB2312", device: str = DEV) -> bytes:
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n'
            f"<SN>{{SN}}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n<SumNum>{sum_num}</SumNum>\r\n"
            f'<DeviceList Num="{items.count("<Item>")}">\r\n{items}</DeviceList>\r\n</Response>\r\n')
    return text.encode("utf-8" if encoding == "UTF-8" else "gb18030")


def item(item_id: str, name: str, extra: str = "") -> str:
    return (f"<Item><DeviceID>{item_id}</DeviceID><Name>{name}</Name><Manufacturer>Hikvision</Manufacturer>"
            f"<Status>ON</Status>{extra}</Item>\r\n")


async def start_with_channels(gw, dev: Simulator, ids: list[str]) -> Simulator:
    """Start the device and await the registry's ChannelAdded for each of ``ids``."""
    with gw.bus.subscribe("channel.added") as added:
        await dev.start()
        pending = set(ids)
        async with asyncio.timeout(8):
            while pending:
                pending.discard((await added.get()).channel_id)
    return dev


def raw_device(gw, packets: list[bytes]) -> RawCatalogDevice:
    return RawCatalogDevice(SimConfig("127.0.0.1", gw.gb28181.server.port), packets)


# -- 1. bare & and < in text ---------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["GB2312", "UTF-8"])
async def test_r1_catalog_with_bare_ampersand_and_angle_keeps_both_cameras(make_gateway, encoding) -> None:
    gw = await make_gateway(sip=sip())
    body = catalog_body(item(CAM1, "东门 A&B 通道", "<Address>3<4号楼 & 广场</Address>")
                        + item(CAM2, "R&D <1号>", "<Address>西门</Address>"), 2, encoding)
    broken = body[:-40]  # cut mid-element: no repair makes it whole, so it is still refused
    dev = await start_with_channels(gw, raw_device(gw, [broken, body]), [CAM1, CAM2])
    try:
        assert (await dev.wait_for(lambda e: e[0] == "SENT"))[2] == [400, 200]
        assert gw.registry.channels[CAM1].name == "东门 A&B 通道"
        assert gw.registry.channels[CAM1].extra["address"] == "3<4号楼 & 广场"
        assert gw.registry.channels[CAM2].name == "R&D <1号>"
        assert gw.metrics.value("vsgw_gb28181_xml_repaired_total", fix="amp") == 1
        assert gw.metrics.value("vsgw_gb28181_xml_repaired_total", fix="lt") == 1
        assert gw.metrics.value("vsgw_gb28181_rejected_total", reason="xml_bad_xml") == 1
        assert await dev.keepalive() == 200
    finally:
        await dev.stop()


# -- 2. PTZ without PTZType ------------------------------------------------------------------------
class PtzRefusingDevice(RawCatalogDevice):
    """Answers DeviceControl with 400, as a device without a PTZ head does."""

    async def _handle(self, req: SipMessage, peer: Peer) -> None:
        if req.method == "MESSAGE" and b"DeviceControl" in req.body:
            self.endpoint.reply(req, response(req, 400, to_tag=self.tag), peer)
            await self._note("REFUSED", "DeviceControl")
            return
        await super()._handle(req, peer)


async def test_r1_channel_without_ptztype_gets_ptz_and_only_fixed_cameras_are_refused(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    body = catalog_body(item(CAM1, "no type") + item(CAM2, "fixed", "<Info><PTZType>3</PTZType></Info>"), 2)
    dev = await start_with_channels(gw, raw_device(gw, [body]), [CAM1, CAM2])
    base = f"http://127.0.0.1:{gw.http_port}/api/cameras"
    try:
        assert gw.registry.channels[CAM1].ptz and not gw.registry.channels[CAM2].ptz
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(f"{base}/{CAM1}/ptz", json={"pan": 1}) as r:
                assert r.status == 200, await r.text()
            async with http.post(f"{base}/{CAM2}/ptz", json={"pan": 1}) as r:
                assert r.status == 501 and "fixed" in (await r.json())["message"]
        moves = [e[2] for e in dev.received if e[1] == "DeviceControl"]
        assert [m["target"] for m in moves] == [CAM1]
        assert ptz.decode(moves[0]["ptzcmd"]).pan > 0
        assert gw.metrics.value("vsgw_gb28181_ptz_refused_total", by="catalog") == 1
    finally:
        await dev.stop()


async def test_r1_device_refusing_ptz_is_a_clear_501_not_a_server_error(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    dev = PtzRefusingDevice(SimConfig("127.0.0.1", gw.gb28181.server.port), [catalog_body(item(CAM1, "box"), 1)])
    await start_with_channels(gw, dev, [CAM1])
    try:
        async with aiohttp.ClientSession(headers=auth()) as http, \
                http.post(f"http://127.0.0.1:{gw.http_port}/api/cameras/{CAM1}/ptz", json={"zoom": 1}) as r:
            assert r.status == 501 and "refused" in (await r.json())["message"]
        await dev.wait_for(lambda e: e[0] == "REFUSED")
        assert gw.metrics.value("vsgw_gb28181_ptz_refused_total", by="device") == 1
    finally:
        await dev.stop()


# -- 3. two devices, one channel ID ---------------------------------------------------------------------
async def test_r1_second_device_claiming_a_channel_is_refused_and_flagged(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    port = gw.gb28181.server.port
    first = Simulator(SimConfig("127.0.0.1", port, device_id=DEV))
    second = Simulator(SimConfig("127.0.0.1", port, device_id="34020000001320000009"))
    cid = first.cfg.channel_ids()[0]
    assert second.cfg.channel_ids() == [cid]  # the simulator derives the same channel ID for both
    await start_with_channels(gw, first, [cid])
    with gw.bus.subscribe("channel.conflict") as conflicts:
        await second.start()
        event = await asyncio.wait_for(conflicts.get(), 8)
    try:
        assert isinstance(event, ChannelConflict) and event.channel_id == cid
        assert (event.holder, event.claimant) == (f"gb28181/{DEV}", "gb28181/34020000001320000009")
        assert gw.registry.channels[cid].extra["device"] == DEV
        assert gw.gb28181.device_of(cid).id == DEV
        assert cid not in gw.gb28181.server.devices.get("34020000001320000009").channels
        assert gw.metrics.value("vsgw_channel_conflicts_total") == 1
        (record,) = gw.registry.conflicts.values()
        assert (record.channel_id, record.holder, record.claims) == (cid, f"gb28181/{DEV}", 1)
        await gw.gb28181.refresh_catalog("34020000001320000009")  # the claim repeats: counted once, noted again
        assert record.claims == 2 and gw.metrics.value("vsgw_channel_conflicts_total") == 1
        assert gw.registry.channels[cid].extra["device"] == DEV
    finally:
        await second.stop()
    # the claimant going offline (unregistered before its stop returns) leaves the holder's channel online
    assert not gw.gb28181.server.devices.get("34020000001320000009").online
    assert gw.registry.channels[cid].online
    await first.stop()


# -- 4. organisation tree and non-camera items ------------------------------------------------------------
GROUP, VORG, ALARM_IN, ALARM_OUT, NVR = ("34020000002150000001", "34020000002160000001", "34020000001340000001",
                                         "34020000001350000001", "34020000001180000001")


async def test_r1_org_tree_and_alarm_items_kept_with_their_kind_not_listed_as_cameras(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    items = (item("34", "省") + item("3402", "市", "<ParentID>34</ParentID>")
             + item("340200", "区", "<ParentID>3402</ParentID>") + item("34020001", "街道", "<ParentID>340200</ParentID>")
             + item(GROUP, "业务分组")
             + item(VORG, "虚拟组织", f"<ParentID>{GROUP}</ParentID><BusinessGroupID>{GROUP}</BusinessGroupID>")
             + item(CAM1, "东门", f"<ParentID>{GROUP}/{VORG}</ParentID><BusinessGroupID>{GROUP}</BusinessGroupID>"
                    "<CivilCode>34020001</CivilCode>")
             + item(CAM2, "西门", f"<ParentID>{VORG}</ParentID>")
             + item(ALARM_IN, "门磁", f"<ParentID>{DEV}</ParentID>") + item(ALARM_OUT, "警铃")
             + item(NVR, "录像机"))
    dev = raw_device(gw, [catalog_body(items, 11)])
    await dev.start()
    try:
        assert await gw.gb28181.refresh_catalog(DEV) == 11  # the tree is complete once the refresh returns
        assert set(gw.registry.channels) == {CAM1, CAM2}
        kinds = {n.id: n.kind for n in gw.gb28181.tree(DEV)}
        assert kinds == {"34": "region", "3402": "region", "340200": "region", "34020001": "region",
                         GROUP: "business_group", VORG: "virtual_org", CAM1: "camera", CAM2: "camera",
                         ALARM_IN: "alarm_input", ALARM_OUT: "alarm_output", NVR: "nvr"}
        nodes = {n.id: n for n in gw.gb28181.tree(DEV)}
        assert nodes["340200"].parent_id == "3402" and nodes[VORG].business_group_id == GROUP
        assert nodes[CAM1].parent_id == VORG and nodes[CAM1].extra["parent_path"] == f"{GROUP}/{VORG}"
        cam = gw.registry.channels[CAM1]
        assert (cam.parent, cam.civil_code, cam.extra["business_group"], cam.extra["kind"]) == (
            VORG, "34020001", GROUP, "camera")
        assert nodes[ALARM_IN].parent_id == DEV and nodes[ALARM_IN].name == "门磁"
    finally:
        await dev.stop()


# -- 5. RecordInfo in device-local time ---------------------------------------------------------------------
class RecordDevice(Simulator):
    """Answers RecordInfo with one local-time file and notes the range it was asked for."""

    async def _message(self, msg: manscdp.Manscdp) -> None:
        if msg.cmd.lower() != "recordinfo":
            await super()._message(msg)
            return
        await self._note("RECORDINFO", msg.root.get("starttime"), msg.root.get("endtime"))
        await self.send_manscdp("Response", "RecordInfo", [
            ("Name", "cam"), ("SumNum", 1), ('RecordList Num="1"', [("Item", [
                ("DeviceID", msg.device_id), ("Name", "rec"), ("FilePath", "/rec/1"),
                ("StartTime", "2024-05-01T08:30:00"), ("EndTime", "2024-05-01T09:00:00"), ("Type", "time")])])],
            sn=msg.sn, device_id=msg.device_id)


@pytest.mark.parametrize(("zones", "asked", "found"), [
    ([], ("2024-05-01T08:00:00", "2024-05-01T10:00:00"), (0, 30, 1, 0)),  # default Asia/Shanghai, UTC+8
    ([f"{DEV}:Europe/Berlin"], ("2024-05-01T02:00:00", "2024-05-01T04:00:00"), (6, 30, 7, 0)),  # CEST, UTC+2
])
async def test_r1_record_query_in_device_local_time_answers_in_utc(make_gateway, zones, asked, found) -> None:
    gw = await make_gateway(sip=sip(time_zones=zones))
    dev = RecordDevice(SimConfig("127.0.0.1", gw.gb28181.server.port))
    cid = dev.cfg.channel_ids()[0]
    await start_with_channels(gw, dev, [cid])
    try:
        start, end = datetime(2024, 5, 1, 0, 0, tzinfo=UTC), datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
        (record,) = await gw.gb28181.query_records(cid, start, end)
        entry = await dev.wait_for(lambda e: e[0] == "RECORDINFO")
        assert (entry[1], entry[2]) == asked
        h1, m1, h2, m2 = found
        assert record.start == datetime(2024, 5, 1, h1, m1, tzinfo=UTC) and record.start.tzinfo is not None
        assert record.end == datetime(2024, 5, 1, h2, m2, tzinfo=UTC)
    finally:
        await dev.stop()


async def test_r15_a_channel_id_held_by_another_adapter_is_refused_until_the_holder_lets_go(make_gateway) -> None:
    gw = await make_gateway(sip=sip(), cameras=[synthetic(CAM1)])  # an RTSP/synthetic camera already has the ID
    dev = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port))
    assert dev.cfg.channel_ids() == [CAM1]
    with gw.bus.subscribe("channel.conflict") as conflicts:
        await dev.start()
        event = await asyncio.wait_for(conflicts.get(), 8)
    try:
        assert (event.holder, event.claimant) == ("synthetic", f"gb28181/{DEV}")
        assert gw.registry.channels[CAM1].adapter == "synthetic" and not gw.gb28181.owns(CAM1)
        gw.registry.removed(CAM1)  # the holder lets the ID go: the open conflict closes, the next claim takes it
        assert not gw.registry.conflicts
        await gw.gb28181.refresh_catalog(DEV)
        assert gw.registry.channels[CAM1].adapter == "gb28181" and gw.gb28181.device_of(CAM1).id == DEV
    finally:
        await dev.stop()
