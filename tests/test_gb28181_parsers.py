"""SIP, MANSCDP, SDP and digest codecs (R1): round trips, quirks, and property tests proving that
arbitrary bytes are rejected with a reason and never crash; malformed packets on the wire are
counted while the server keeps serving other devices."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.gb28181 import digest, manscdp, sip
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
    nonces = digest.Nonces()
    assert nonces.valid(nonces.issue()) and not nonces.valid("0.bad") and not nonces.valid("junk")


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
