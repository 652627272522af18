"""SIP, MANSCDP, SDP and digest codecs (R1): round trips, quirks, and property tests proving that
arbitrary bytes are rejected with a reason and never crash; malformed packets on the wire are
counted while the server keeps serving other devices."""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.gb28181 import catalog, devtime, digest, manscdp, sip
from adapters.gb28181.manscdp import XmlError
from adapters.gb28181.sdp import Sdp, ssrc_for
from adapters.gb28181.sdp import parse as parse_sdp
from adapters.gb28181.simulator import SimConfig, Simulator
from adapters.gb28181.sip import SipError

from .test_gb28181_signalling import sip as sip_section
from .test_gb28181_signalling import until

REGISTER = (b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
            b"v: SIP/2.0/UDP 10.0.0.9:5060;rport;branch=z9hG4bK1\r\n"
            b"f: <sip:34020000001320000001@3402000000>;tag=a\r\n"
            b"t: <sip:34020000001320000001@3402000000>\r\n"
            b"i: abc@10.0.0.9\r\nCSeq: 1 REGISTER\r\nExpires: 3600\r\nl: 0\r\n\r\n")


def test_r1_sip_compact_headers_and_rport_response() -> None:
    msg = sip.parse(REGISTER)
    assert msg.method == "REGISTER" and msg.call_id == "abc@10.0.0.9" and msg.cseq == (1, "REGISTER")
    assert sip.uri_user(msg.get("from")) == "34020000001320000001"
    resp = sip.response(msg, 200, to_tag="x", source=("203.0.113.5", 40000))
    assert "rport=40000" in resp.get("via") and "received=203.0.113.5" in resp.get("via")
    assert sip.via_address(msg, ("203.0.113.5", 40000)) == ("203.0.113.5", 40000)
    again = sip.parse(resp.encode())
    assert again.status == 200 and sip.param(again.get("to"), "tag") == "x"


@pytest.mark.parametrize(("data", "reason"), [
    (b"garbage", "no_header_end"),
    (b"HELLO\r\n\r\n", "bad_start_line"),
    (REGISTER.replace(b"CSeq: 1 REGISTER\r\n", b""), "missing_header"),
    (REGISTER.replace(b"l: 0", b"l: 99"), "truncated_body"),
    (REGISTER.replace(b"l: 0", b"l: x"), "bad_content_length"),
    (REGISTER.replace(b"Expires: 3600", b"Expires 3600"), "bad_header"),
    (b"SIP/2.0 999 Nope\r\n\r\n", "bad_status"),
])
def test_r1_malformed_sip_rejected_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SipError) as err:
        sip.parse(data)
    assert err.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_r1_sip_parser_never_crashes_on_arbitrary_bytes(data: bytes) -> None:
    try:
        msg = sip.parse(data)
    except SipError:
        return
    assert msg.is_request or msg.status is not None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(REGISTER)), st.binary(min_size=1, max_size=4))
def test_r1_sip_parser_survives_corrupted_registers(pos: int, junk: bytes) -> None:
    try:
        sip.parse(REGISTER[:pos] + junk + REGISTER[pos + len(junk):])
    except SipError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_r1_manscdp_parser_never_crashes(data: bytes) -> None:
    try:
        manscdp.parse(data)
    except XmlError:
        pass


NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
                max_size=30)  # any character XML 1.0 allows


@settings(max_examples=150, deadline=None)
@given(NAMES)
def test_r1_manscdp_round_trips_any_name_declared_utf8(name: str) -> None:
    body = manscdp.build("Response", "DeviceInfo", 7, "34020000001320000001", [("DeviceName", name)], "UTF-8")
    assert manscdp.parse(body).root.get("devicename") == name.strip()


@settings(max_examples=150, deadline=None)
@given(NAMES.filter(lambda n: all(_gb_ok(c) for c in n)))
def test_r1_manscdp_gb_bodies_round_trip_and_override_settles_ambiguity(name: str) -> None:
    body = manscdp.build("Response", "DeviceInfo", 7, "34020000001320000001", [("DeviceName", name)], "GB2312")
    assert manscdp.parse(body, charset="gb18030").root.get("devicename") == name.strip()
    if not manscdp._looks_utf8(name.encode("gb18030")):  # GB bytes that are not also CJK-shaped UTF-8
        assert manscdp.parse(body).root.get("devicename") == name.strip()


def _gb_ok(c: str) -> bool:
    try:
        c.encode("gb18030")
        return True
    except UnicodeEncodeError:
        return False


def test_r1_manscdp_utf8_mislabelled_as_gb2312_still_read() -> None:
    body = ('<?xml version="1.0" encoding="GB2312"?><Response><CmdType>Catalog</CmdType><SN>1</SN>'
            '<DeviceID>1</DeviceID><Name>东门广场</Name></Response>').encode()
    assert manscdp.parse(body).root.get("name") == "东门广场"


def test_r1_manscdp_case_insensitive_and_gbk_override() -> None:
    body = ('<?xml version="1.0" encoding="GB2312"?><notify><cmdType>Keepalive</cmdType><sn>3</sn>'
            '<deviceID>34020000001320000001</deviceID><Status>OK</Status></notify>').encode("gbk")
    msg = manscdp.parse(body)
    assert (msg.kind, msg.cmd, msg.sn, msg.root.get("STATUS")) == ("notify", "Keepalive", 3, "OK")
    gbk = ('<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><Name>东门</Name></Response>'
           ).encode("gbk")
    assert manscdp.parse(gbk).root.get("name") == "东门"  # not UTF-8: decoded as GB18030
    assert manscdp.parse(gbk, charset="gbk").root.get("name") == "东门"
    with pytest.raises(XmlError, match="bad_xml"):
        manscdp.parse(gbk[:-12])  # truncated
    with pytest.raises(XmlError, match="missing_field"):
        manscdp.parse(b"<Notify><SN>1</SN></Notify>")


def test_r1_sdp_offer_and_2022_substream() -> None:
    offer = Sdp(session="Playback", origin_id="34020000002000000001", host="10.1.1.1", port=30002,
                transport="tcp-passive", ssrc=ssrc_for("3402000000", 2, history=True), start=10, end=20,
                uri="34020000001320000001:0", substream=1)
    text = offer.encode().decode()
    for line in ("s=Playback", "u=34020000001320000001:0", "t=10 20", "m=video 30002 TCP/RTP/AVP 96 98 100",
                 "a=rtpmap:96 PS/90000", "a=rtpmap:98 H264/90000", "a=rtpmap:100 H265/90000", "a=setup:passive",
                 "a=streamnumber:1", "y=1200000002"):
        assert line in text.splitlines()
    back = parse_sdp(offer.encode())
    assert (back.transport, back.port, back.ssrc, back.substream, back.uri) == (
        "tcp-passive", 30002, "1200000002", 1, "34020000001320000001:0")
    assert parse_sdp(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5 RTP/AVP 96\r\na=streamMode:SUB\r\n").substream == 1


def test_r1_digest_matches_rfc2617_with_and_without_qop() -> None:
    value = digest.authorization('Digest realm="3402000000", nonce="n1", qop="auth"', "dev", "pw", "REGISTER",
                                 "sip:34020000002000000001@3402000000")
    auth = digest.parse_header(value)
    assert auth["qop"] == "auth" and digest.verify(auth, "pw", "REGISTER") and not digest.verify(auth, "x", "REGISTER")
    plain = digest.parse_header(digest.authorization('Digest realm="r", nonce="n"', "u", "p", "REGISTER", "sip:a@b"))
    ha1, ha2 = digest.md5("u:r:p"), digest.md5("REGISTER:sip:a@b")
    assert plain["response"] == digest.md5(f"{ha1}:n:{ha2}")


async def test_r1_malformed_packets_counted_and_other_devices_unaffected(make_gateway) -> None:
    gw = await make_gateway(sip=sip_section())
    port = gw.gb28181.server.port
    sim = Simulator(SimConfig("127.0.0.1", port))
    await sim.start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for junk in (b"\x00\xffnot sip at all", REGISTER.replace(b"l: 0", b"l: 50"), b"INVITE x\r\n\r\n"):
        udp.sendto(junk, ("127.0.0.1", port))
    udp.close()
    # a truncated-XML MESSAGE from the registered device: answered 400, counted
    bad = sim._request("MESSAGE", b"<Notify><CmdType>Keepalive</CmdType><SN>1", "Application/MANSCDP+xml")
    resp = await sim.endpoint.request(bad, sim.server)
    assert resp.status == 400
    # a TCP stream with an unframeable Content-Length is closed, the server keeps listening
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REGISTER.replace(b"l: 0", b"l: -1"))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await until(lambda: gw.metrics.value("vsgw_gb28181_rejected_total", reason="bad_content_length") == 1)
    assert gw.metrics.value("vsgw_gb28181_rejected_total", reason="no_header_end") == 1
    assert gw.metrics.value("vsgw_gb28181_rejected_total", reason="truncated_body") == 1
    assert gw.metrics.value("vsgw_gb28181_rejected_total", reason="bad_start_line") == 1
    assert gw.metrics.value("vsgw_gb28181_rejected_total", reason="xml_bad_xml") == 1
    assert await sim.keepalive() == 200  # still serving
    await sim.stop()


async def test_r1_tcp_messages_framed_by_content_length_across_writes(make_gateway) -> None:
    gw = await make_gateway(sip=sip_section())
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.gb28181.server.port)
    two = REGISTER.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP") * 2  # two requests back to back …
    for i in range(0, len(two), 97):  # … cut at arbitrary points
        writer.write(two[i:i + 97])
        await writer.drain()
    answers = b""
    async with asyncio.timeout(5):
        while answers.count(b"SIP/2.0 401") < 2:
            answers += await reader.read(4096)
    writer.close()
    first = sip.parse(answers[:answers.index(b"SIP/2.0 401", 1)])
    assert first.status == 401 and "Digest" in first.get("www-authenticate")


# -- lenient parsing of field devices' bodies -------------------------------------------------------
def _catalog_with_raw_name(name: str) -> bytes:
    """A Catalog answer with ``name`` written into <Name> unescaped, as some Hikvision firmware does."""
    body = manscdp.build("Response", "Catalog", 1, "34020000001320000001", [("SumNum", 1), ('DeviceList Num="1"', [
        ("Item", [("DeviceID", "34020000001310000001"), ("Name", "NAME"), ("Status", "ON")])])])
    return body.replace(b"<Name>NAME</Name>", b"<Name>" + name.encode("gb18030") + b"</Name>")


def _name_of(msg: manscdp.Manscdp) -> str:
    return msg.root.find("devicelist").findall("item")[0].get("name")


def test_r1_manscdp_repairs_bare_ampersand_angle_and_unclosed_tag_in_text() -> None:
    msg = manscdp.parse(_catalog_with_raw_name("东门 A&B <1号> x<y &amp; &#19996; a</i>"))
    assert _name_of(msg) == "东门 A&B <1号> x<y & 东 a</i>"
    assert msg.repaired == ("amp", "lt", "stray_end_tag")
    msg = manscdp.parse(_catalog_with_raw_name("<b>bold"))
    assert _name_of(msg) == "<b>bold" and msg.repaired == ("unclosed_tag",)
    assert manscdp.parse(_catalog_with_raw_name("plain &amp; fine")).repaired == ()


NAME_CHARS = st.text(alphabet="aB1 东门&<>;#/=\"'x", max_size=30).filter(
    lambda n: not any(bad in n for bad in ("<!", "<?", "/>", "</", "&#")) and
    re.search(r"&(amp|lt|gt|quot|apos);", n) is None)  # a closed tag or an entity is markup, not a stray character


@settings(max_examples=300, deadline=None)
@given(NAME_CHARS)
def test_r1_manscdp_raw_names_with_stray_markup_characters_read_back_exactly(name: str) -> None:
    msg = manscdp.parse(_catalog_with_raw_name(name))
    assert _name_of(msg) == name.strip()
    assert bool(msg.repaired) == ("&" in name or "<" in name)


def test_r1_manscdp_refuses_dtd_entities_and_deep_nesting_even_when_repairing() -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
              b"<Notify><CmdType>&b;</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>")
    with pytest.raises(XmlError, match="forbidden"):
        manscdp.parse(laughs)
    deep = b"<Notify><CmdType>K</CmdType><SN>1</SN><DeviceID>1</DeviceID>" + b"<a>" * 40 + b"</a>" * 40 + b"</Notify>"
    with pytest.raises(XmlError, match="too_deep"):
        manscdp.parse(deep)
    with pytest.raises(XmlError, match="too_deep"):  # the repair walk keeps the same bound
        manscdp.parse(deep.replace(b"<CmdType>K", b"<CmdType>K&"))
    with pytest.raises(XmlError, match="bad_xml"):  # text repairs cannot mend a broken structure
        manscdp.parse(b"<Notify><CmdType>A&B</CmdType><SN>1</SN><DeviceID>1</DeviceID>")


@pytest.mark.parametrize("codec", ["gb2312", "gbk", "utf-8"])
def test_r1_manscdp_repair_keeps_each_charset(codec: str) -> None:
    declared = "UTF-8" if codec == "utf-8" else "GB2312"
    text = (f'<?xml version="1.0" encoding="{declared}"?><Response><CmdType>Catalog</CmdType><SN>1</SN>'
            "<DeviceID>1</DeviceID><Name>东门&西门 <广场></Name></Response>")
    msg = manscdp.parse(text.encode(codec))
    assert msg.root.get("name") == "东门&西门 <广场>" and msg.repaired == ("amp", "lt")


# -- catalog item kinds, PTZ types, device-local time --------------------------------------------------
@pytest.mark.parametrize(("item_id", "kind"), [
    ("34", "region"), ("3402", "region"), ("340200", "region"), ("34020001", "region"),
    ("34020000001310000001", "camera"), ("34020000001320000001", "camera"), ("34020000001340000001", "alarm_input"),
    ("34020000001350000001", "alarm_output"), ("34020000001180000001", "nvr"), ("34020000002000000001", "system"),
    ("34020000002150000001", "business_group"), ("34020000002160000001", "virtual_org"),
    ("34020000001380000001", "mobile"), ("34020000001990000001", "other"), ("340200001", "unknown"),
    ("cam-1", "unknown"),
])
def test_r1_catalog_item_kind_from_its_id(item_id: str, kind: str) -> None:
    assert catalog.classify(item_id) == kind


@pytest.mark.parametrize(("ptz_type", "ptz"), [(None, True), ("", True), ("1", True), ("2", True), ("3", False),
                                               ("4", True), ("5", True), ("6", True), ("9", True)])
def test_r1_only_a_fixed_camera_is_refused_ptz_from_the_catalog(ptz_type: str | None, ptz: bool) -> None:
    info = [("Info", [("PTZType", ptz_type)])] if ptz_type is not None else []
    body = manscdp.build("Response", "Catalog", 1, "34020000001320000001", [("SumNum", 1), ('DeviceList Num="1"', [
        ("Item", [("DeviceID", "34020000001310000001"), ("Name", "c"), *info])])])
    item = manscdp.parse(body).root.find("devicelist").findall("item")[0]
    assert catalog.channel_from_item(item, "34020000001320000001", "gb28181").ptz is ptz


def test_r1_device_local_time_both_ways() -> None:
    shanghai, berlin = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")
    assert devtime.to_device(datetime(2024, 1, 31, 20, 0, tzinfo=UTC), shanghai) == "2024-02-01T04:00:00"
    assert devtime.to_device(datetime(2024, 1, 31, 20, 0), shanghai) == "2024-02-01T04:00:00"  # naive = UTC
    assert devtime.to_device(datetime(2024, 7, 1, 12, 0, tzinfo=UTC), berlin) == "2024-07-01T14:00:00"  # CEST
    assert devtime.from_device("2024-02-01T04:00:00", shanghai) == datetime(2024, 1, 31, 20, 0, tzinfo=UTC)
    assert devtime.from_device("2024-02-01T04:00:00+01:00", shanghai) == datetime(2024, 2, 1, 3, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        devtime.from_device("yesterday", shanghai)
