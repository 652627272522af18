"""R18: every number in a SIP message is ASCII digits within its range. Out-of-range ports
(``rport=70000``), Unicode digits that ``str.isdigit`` accepts (``'٣'``, ``'²'``, fullwidth), an
oversized CSeq or Expires, conflicting Content-Lengths: each is answered 400 and counted over UDP
and TCP, and the server keeps serving the registered device. The registrar bounds Expires too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.gb28181 import sip
from adapters.gb28181.simulator import SimConfig, Simulator

from .test_gb28181_signalling import sip as sip_section
from .test_gb28181_signalling import start_sim
from .test_r18_sip_transport_binding import rejected

SIPP = Path(__file__).parent / "sipp"
TEMPLATE = ("REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
            "Via: SIP/2.0/{proto} 127.0.0.1:5060;rport;branch=z9hG4bK{n}\r\n"
            "From: <sip:34020000001320000005@3402000000>;tag=a\r\n"
            "To: <sip:34020000001320000005@3402000000>\r\n"
            "Call-ID: numbers-{n}@127.0.0.1\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"
            "Contact: <sip:34020000001320000005@127.0.0.1:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n")
CASES = [  # (what the field says, replaced by, the reason counted)
    (";rport;", ";rport=70000;", "bad_rport"),
    ("127.0.0.1:5060;rport", "127.0.0.1:0;rport", "bad_via_port"),
    ("@127.0.0.1:5060>", "@127.0.0.1:65536>", "bad_contact_port"),
    ("CSeq: 1 REGISTER", "CSeq: \u0663 REGISTER", "bad_cseq"),  # ARABIC-INDIC DIGIT THREE
    ("CSeq: 1 REGISTER", f"CSeq: {2**31} REGISTER", "bad_cseq"),
    ("CSeq: 1 REGISTER", "CSeq: 1 INVITE", "bad_cseq"),
    ("Expires: 3600", "Expires: \uff13\uff16\uff10\uff10", "bad_expires"),  # fullwidth 3600
    ("Expires: 3600", "Expires: 99999999999", "bad_expires"),
    ("Max-Forwards: 70", "Max-Forwards: 256", "bad_max_forwards"),
    ("Content-Length: 0", "Content-Length: \u00b2", "bad_content_length"),  # SUPERSCRIPT TWO
    ("Content-Length: 0", "Content-Length: 0\r\nl: 4", "bad_content_length"),
]


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.put_nowait(data)


def status_line(data: bytes) -> tuple[int, str]:
    """Status and reason of an answer (a 400 echoes the bad header, so it is not parsed whole)."""
    _version, status, reason = data.split(b"\r\n", 1)[0].decode().split(" ", 2)
    return int(status), reason


async def exchange_udp(port: int, datagrams: list[bytes]) -> list[tuple[int, str]]:
    loop = asyncio.get_running_loop()
    transport, inbox = await loop.create_datagram_endpoint(Inbox, local_addr=("127.0.0.1", 0))
    try:
        answers = []
        for data in datagrams:
            transport.sendto(data, ("127.0.0.1", port))
            answers.append(status_line(await asyncio.wait_for(inbox.queue.get(), 5)))
        return answers
    finally:
        transport.close()


async def exchange_tcp(port: int, messages: list[bytes]) -> list[tuple[int, str]]:
    """One connection, one message after another: each answered, the connection kept."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        answers = []
        for data in messages:
            writer.write(data)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            answers.append(status_line(head))  # the answers here carry no body
        return answers
    finally:
        writer.close()


def message(proto: str, n: int, old: str = "", new: str = "") -> bytes:
    text = TEMPLATE.format(proto=proto, n=n)
    assert old in text
    return text.replace(old, new).encode()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r18_sip_invalid_numbers_are_answered_400_and_counted(make_gateway, transport) -> None:
    gw = await make_gateway(sip=sip_section())
    port = gw.gb28181.server.port
    sim = await start_sim(gw, transport=transport)
    try:
        proto = transport.upper()
        # over TCP a Content-Length that is not a number cannot frame the stream: the connection closes
        # (tests/test_gb28181_parsers.py); every other case is answered on the connection it came on
        cases = CASES if transport == "udp" else [c for c in CASES if "\u00b2" not in c[1]]
        bad = [message(proto, i, old, new) for i, (old, new, _reason) in enumerate(cases)]
        good = message(proto, len(cases))  # the same REGISTER with nothing wrong: challenged as usual
        exchange = exchange_udp if transport == "udp" else exchange_tcp
        answers = await exchange(port, [*bad, good])
        assert [status for status, _reason in answers] == [400] * len(cases) + [401]
        for (_old, _new, reason), (_status, phrase) in zip(cases, answers, strict=False):
            assert reason in phrase
        for reason in {r for _o, _n, r in cases}:
            assert rejected(gw, reason) == sum(r == reason for _o, _n, r in cases), reason
        assert rejected(gw, "handler_error") == 0
        assert await sim.keepalive() == 200  # still serving the registered device
    finally:
        await sim.stop()


async def test_r18_sip_registrar_bounds_expires(make_gateway) -> None:
    gw = await make_gateway(sip=sip_section(register_expires_min=120, register_expires_max=7200))
    port = gw.gb28181.server.port
    loop = asyncio.get_running_loop()
    transport, inbox = await loop.create_datagram_endpoint(Inbox, local_addr=("127.0.0.1", 0))
    transport.sendto(message("UDP", 1, "Expires: 3600", "Expires: 30"), ("127.0.0.1", port))
    brief = sip.parse(await asyncio.wait_for(inbox.queue.get(), 5))
    transport.close()
    assert brief.status == 423 and brief.get("min-expires") == "120"
    sim = Simulator(SimConfig("127.0.0.1", port, expires=4_000_000_000))
    seen: list[sip.SipMessage] = []
    original = sim.endpoint.request

    async def spy(msg, peer, **kw):
        resp = await original(msg, peer, **kw)
        seen.append(resp)
        return resp

    sim.endpoint.request = spy  # type: ignore[method-assign]
    await sim.start()
    try:
        assert seen[-1].status == 200 and seen[-1].get("expires") == "7200"  # granted the maximum
        assert gw.gb28181.server.devices.get(sim.cfg.device_id).expires == 7200
    finally:
        await sim.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r18_sipp_peer_with_bad_numbers_gets_400_then_is_served(make_gateway, transport) -> None:
    """sipp (a third-party SIP stack) sends rport=70000 and an Arabic-Indic CSeq: 400 for each, and
    the well-formed REGISTER that follows is challenged as usual."""
    gw = await make_gateway(sip=sip_section())
    proc = await asyncio.create_subprocess_exec(
        "sipp", f"127.0.0.1:{gw.gb28181.server.port}", "-sf", str(SIPP / "bad_numbers.xml"),
        "-s", "34020000002000000001", "-key", "dev", "34020000001320000006", "-key", "realm", "3402000000",
        "-i", "127.0.0.1", "-p", "0", "-t", "t1" if transport == "tcp" else "u1", "-m", "1", "-nostdin",
        "-timeout", "20s", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        rc = await asyncio.wait_for(proc.wait(), 30)
        err = (await proc.stderr.read()).decode(errors="replace")
        assert rc == 0, err[-2000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert rejected(gw, "bad_rport") == 1 and rejected(gw, "bad_cseq") == 1
