"""The INVITE client transaction against sipp devices that behave as field devices do (R1), over
UDP and TCP: a slow 200 after 100 Trying, a retransmitted 200, a 200 that crosses our CANCEL, a
CANCELled INVITE answered 487, and a device that answers but sends no media."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.gb28181.sip import SipError, SipMessage, param, parse
from adapters.gb28181.transaction import InviteTimeout
from adapters.gb28181.transport import Endpoint
from gateway.bus import StreamState

from .test_gb28181_signalling import sip, until
from .test_gb28181_sipp import CHAN, DEV
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")

HERE = Path(__file__).parent / "sipp"
PASSWORD = "sipp-pw"


async def run_sipp(port: int, transport: str, ooc: str, hold_ms: int, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sipp", *extra, f"127.0.0.1:{port}", "-sf", str(HERE / "device.xml"), "-oocsf", str(HERE / ooc),
        "-s", "34020000002000000001", "-key", "dev", DEV, "-key", "chan", CHAN, "-key", "realm", "3402000000",
        "-d", str(hold_ms), "-au", DEV, "-ap", PASSWORD, "-i", "127.0.0.1", "-p", "0",
        "-t", "t1" if transport == "tcp" else "u1", "-m", "1", "-nostdin", "-timeout", "60s",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def finished(proc: asyncio.subprocess.Process) -> None:
    """sipp ran its whole scenario: every expected ACK/BYE/CANCEL arrived in time."""
    rc = await asyncio.wait_for(proc.wait(), 40)
    err = (await proc.stderr.read()).decode(errors="replace")
    assert rc == 0, err[-2000:]


def record_sends(endpoint: Endpoint) -> list[SipMessage]:
    """Every SIP message the gateway sends, parsed (the endpoint's own send still does the sending)."""
    sent: list[SipMessage] = []
    original = endpoint.send

    def send(msg: SipMessage | bytes, peer) -> bool:  # noqa: ANN001
        try:
            sent.append(parse(msg.encode() if isinstance(msg, SipMessage) else msg))
        except SipError:
            pass
        return original(msg, peer)

    endpoint.send = send  # type: ignore[method-assign]
    return sent


def of(sent: list[SipMessage], method: str) -> list[SipMessage]:
    return [m for m in sent if m.method == method]


async def registered(gw, proc: asyncio.subprocess.Process):  # noqa: ANN001, ANN201
    server = gw.gb28181.server
    try:
        await until(lambda: server.devices.get(DEV) is not None and server.devices.get(DEV).online, timeout=10)
    except TimeoutError:
        proc.kill()
        raise
    return server.devices.get(DEV)


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_slow_device_200_after_100_trying_succeeds_without_invite_retransmission(
        make_gateway, transport) -> None:
    # the answer comes 12 s after the INVITE, past invite_timeout (10 s, the bound while nothing answered)
    gw = await make_gateway(sip=sip(password=PASSWORD, invite_timeout=10.0, invite_answer_timeout=30.0,
                                    silence_timeout=60))
    proc = await run_sipp(gw.gb28181.server.port, transport, "invite_slow.xml", hold_ms=15000)
    try:
        dev = await registered(gw, proc)
        sent = record_sends(gw.gb28181.server.endpoint)
        inv = await gw.gb28181.player.invite(dev, CHAN)
        assert inv.to_tag and inv.answer.port == 15060
        invites, acks = of(sent, "INVITE"), of(sent, "ACK")
        assert len(invites) == 1  # the 100 stopped Timer A (and TCP never retransmits)
        assert len(acks) == 1 and acks[0].branch != invites[0].branch  # a 2xx's ACK is its own transaction
        assert param(acks[0].get("to") or "", "tag") == inv.to_tag
        await inv.close()
        await finished(proc)
    finally:
        await kill(proc)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_every_retransmitted_200_ok_is_acked(make_gateway, transport) -> None:
    gw = await make_gateway(sip=sip(password=PASSWORD, silence_timeout=60))
    # -nr: sipp would take our second, identical ACK for a retransmission of the first and answer it
    # with its last 200 again instead of moving on; a real device just stops retransmitting
    proc = await run_sipp(gw.gb28181.server.port, transport, "invite_retransmit_200.xml", 10000, "-nr")
    try:
        dev = await registered(gw, proc)
        sent = record_sends(gw.gb28181.server.endpoint)
        inv = await gw.gb28181.player.invite(dev, CHAN)
        await until(lambda: len(of(sent, "ACK")) == 3)  # sipp sends the next copy only after an ACK
        acks = of(sent, "ACK")
        assert len({a.encode() for a in acks}) == 1  # the same ACK for the same 200
        assert gw.metrics.value("vsgw_gb28181_2xx_retransmissions_acked_total") == 2
        await inv.close()
        await finished(proc)
    finally:
        await kill(proc)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_200_ok_after_cancel_is_acked_then_byed(make_gateway, transport) -> None:
    gw = await make_gateway(sip=sip(password=PASSWORD, invite_answer_timeout=1.0))
    proc = await run_sipp(gw.gb28181.server.port, transport, "invite_late_200.xml", hold_ms=8000)
    try:
        dev = await registered(gw, proc)
        sent = record_sends(gw.gb28181.server.endpoint)
        with pytest.raises(InviteTimeout) as err:
            await gw.gb28181.player.invite(dev, CHAN)
        assert err.value.provisional
        await until(lambda: len(of(sent, "BYE")) == 1)
        invite, cancel = of(sent, "INVITE")[0], of(sent, "CANCEL")[0]
        assert cancel.branch == invite.branch and cancel.cseq == (invite.cseq[0], "CANCEL")
        assert cancel.uri == invite.uri and param(cancel.get("to") or "", "tag") is None
        ack, bye = of(sent, "ACK")[0], of(sent, "BYE")[0]
        assert ack.call_id == bye.call_id == invite.call_id
        assert param(bye.get("to") or "", "tag") and bye.cseq[0] > invite.cseq[0]
        assert gw.metrics.value("vsgw_gb28181_late_2xx_total") == 1
        assert gw.metrics.value("vsgw_gb28181_invite_total", result="timeout", session="Play") == 1
        assert not gw.gb28181.player.dialogs  # nothing left open on either side
        await finished(proc)
    finally:
        await kill(proc)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_cancelled_invite_487_is_acked_in_its_transaction(make_gateway, transport) -> None:
    gw = await make_gateway(sip=sip(password=PASSWORD, invite_answer_timeout=1.0))
    proc = await run_sipp(gw.gb28181.server.port, transport, "invite_cancel_487.xml", hold_ms=8000)
    try:
        dev = await registered(gw, proc)
        sent = record_sends(gw.gb28181.server.endpoint)
        with pytest.raises(InviteTimeout):
            await gw.gb28181.player.invite(dev, CHAN)
        await until(lambda: len(of(sent, "ACK")) == 1)
        invite, ack = of(sent, "INVITE")[0], of(sent, "ACK")[0]
        assert ack.branch == invite.branch and ack.uri == invite.uri  # a non-2xx ACK stays in the transaction
        assert ack.cseq == (invite.cseq[0], "ACK") and param(ack.get("to") or "", "tag")
        assert len(of(sent, "CANCEL")) == 1 and not of(sent, "BYE")
        assert gw.gb28181.player.pool.in_use == 0
        await finished(proc)
    finally:
        await kill(proc)


async def test_r1_device_without_media_gets_bounded_backed_off_reinvites_then_no_media(make_gateway) -> None:
    backoff = 0.3
    gw = await make_gateway(sip=sip(password=PASSWORD, silence_timeout=0.5, reinvites=2, reinvite_backoff=backoff))
    proc = await run_sipp(gw.gb28181.server.port, "udp", "device_ooc.xml", hold_ms=15000)
    try:
        await registered(gw, proc)
        await until(lambda: CHAN in gw.registry.channels)
        sent = record_sends(gw.gb28181.server.endpoint)
        loop = asyncio.get_running_loop()
        times: list[float] = []
        original = gw.gb28181.player.invite

        async def timed_invite(*args, **kw):  # noqa: ANN002, ANN003, ANN202
            times.append(loop.time())
            return await original(*args, **kw)

        gw.gb28181.player.invite = timed_invite  # type: ignore[method-assign]
        with gw.bus.subscribe("stream.state") as events, \
                gw.hub.subscribe(TEST_READER, CHAN, name="test", limits=gw.reader_limits) as reader:
            event = await asyncio.wait_for(events.get(), 15)
            assert isinstance(event, StreamState) and event.key == CHAN and not event.running
            assert event.reason is not None and event.reason.startswith("no media")
            assert reader.closed  # the stream stopped instead of reopening
            assert not gw.hub.streams[CHAN].running
        assert len(times) == 3 == len(of(sent, "INVITE")) == len(of(sent, "BYE"))
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        # each attempt waits the silence timeout, then a doubling backoff before the next INVITE
        assert gaps[0] >= 0.5 + backoff and gaps[1] >= 0.5 + 2 * backoff
        assert gw.metrics.value("vsgw_gb28181_no_media_total") == 1
        assert gw.metrics.value("vsgw_gb28181_silent_streams_total") == 3
    finally:
        await kill(proc)
