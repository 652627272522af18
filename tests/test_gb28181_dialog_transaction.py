"""The INVITE client transaction's timers and ACK rules against a device whose answers each test
writes by hand (R1): Timer A over UDP only, no CANCEL before a 1xx, a 2xx after the give-up ACKed
and BYE'd, a 3xx-6xx ACKed on the INVITE's branch (again for each retransmission), and one INFO line
per dialog outcome with the full messages at DEBUG when ``[node] log_level`` asks for it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.gb28181.server import DeviceRefused
from adapters.gb28181.sip import SipMessage, param, response
from adapters.gb28181.simulator import SimConfig, Simulator
from adapters.gb28181.transaction import InviteTimeout
from adapters.gb28181.transport import Peer

from .test_gb28181_signalling import DEV, sip, until


class Scripted(Simulator):
    """A registered device that leaves INVITEs to the test and records every request it gets."""

    def __init__(self, cfg: SimConfig) -> None:
        super().__init__(cfg)
        self.requests: list[tuple[SipMessage, Peer, float]] = []
        self.arrived = asyncio.Condition()

    async def _handle(self, req: SipMessage, peer: Peer) -> None:
        async with self.arrived:
            self.requests.append((req, peer, asyncio.get_running_loop().time()))
            self.arrived.notify_all()
        if req.method not in ("INVITE", "ACK"):
            await super()._handle(req, peer)  # CANCEL and BYE get 200, queries their answers

    def of(self, method: str) -> list[tuple[SipMessage, Peer, float]]:
        return [r for r in self.requests if r[0].method == method]

    async def nth(self, method: str, n: int = 1, timeout: float = 10.0) -> tuple[SipMessage, Peer, float]:
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.of(method)) >= n)
        return self.of(method)[n - 1]

    def answer(self, req: SipMessage, peer: Peer, status: int, sdp: bool = False) -> SipMessage:
        out = response(req, status, to_tag=self.tag if status > 100 else None)
        if sdp:
            out.add("Contact", f"<sip:{self.cfg.channel_ids()[0]}@{self.endpoint.host}:{self.endpoint.port}>")
            out.add("Content-Type", "APPLICATION/SDP")
            out.body = (f"v=0\r\no=x 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                        f"m=video 15060 RTP/AVP 96\r\na=sendonly\r\n").encode()
        self.endpoint.reply(req, out, peer)
        return out


async def pair(make_gateway, transport: str, **sip_kw) -> tuple[object, Scripted, object]:  # noqa: ANN001
    gw = await make_gateway(sip=sip(**sip_kw))
    sim = Scripted(SimConfig("127.0.0.1", gw.gb28181.server.port, transport=transport))
    await sim.start()
    await until(lambda: sim.cfg.channel_ids()[0] in gw.registry.channels)
    return gw, sim, gw.gb28181.server.devices.get(DEV)


async def test_r1_unanswered_udp_invite_retransmits_doubling_and_cancels_only_after_a_late_1xx(make_gateway) -> None:
    gw, sim, dev = await pair(make_gateway, "udp", invite_timeout=2.5)
    cid = sim.cfg.channel_ids()[0]
    try:
        with pytest.raises(InviteTimeout) as err:
            await gw.gb28181.player.invite(dev, cid)
        assert not err.value.provisional
        copies = sim.of("INVITE")
        times = [t for _, _, t in copies]
        assert len(copies) == 3  # at 0, T1 and 3*T1: Timer A doubles
        assert times[2] - times[1] > times[1] - times[0] >= 0.45
        assert len({m.encode() for m, _, _ in copies}) == 1  # the same request, not a new INVITE
        assert not sim.of("CANCEL")
        # §9.1: the CANCEL waits for a provisional; here it comes after the gateway gave up
        invite, peer, _ = copies[0]
        sim.answer(invite, peer, 100)
        cancel, cpeer, _ = await sim.nth("CANCEL")
        assert cancel.branch == invite.branch and cancel.cseq == (invite.cseq[0], "CANCEL")
        sim.answer(invite, peer, 487)
        ack, _, _ = await sim.nth("ACK")
        assert ack.branch == invite.branch and ack.cseq == (invite.cseq[0], "ACK")
        assert len(sim.of("INVITE")) == 3  # an abandoned INVITE is not sent again
        assert gw.metrics.value("vsgw_gb28181_invite_total", result="timeout", session="Play") == 1
    finally:
        await sim.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_200_after_an_unanswered_invite_timed_out_is_acked_and_byed(make_gateway, transport) -> None:
    gw, sim, dev = await pair(make_gateway, transport, invite_timeout=1.0)
    cid = sim.cfg.channel_ids()[0]
    try:
        with pytest.raises(InviteTimeout):
            await gw.gb28181.player.invite(dev, cid)
        invite, peer, _ = sim.of("INVITE")[0]
        ok = sim.answer(invite, peer, 200, sdp=True)  # no 100 first: nothing to CANCEL, the call is BYE'd
        ack, _, _ = await sim.nth("ACK")
        bye, _, _ = await sim.nth("BYE")
        assert ack.branch != invite.branch and param(ack.get("to") or "", "tag") == sim.tag
        assert bye.call_id == invite.call_id and bye.cseq == (invite.cseq[0] + 1, "BYE")
        assert bye.uri == f"sip:{cid}@{sim.endpoint.host}:{sim.endpoint.port}"  # the 2xx's Contact
        # over TCP Timer A never runs: the one INVITE arrived before the ACK on the same byte stream
        assert len(sim.of("INVITE")) == (1 if transport == "tcp" else 2)
        assert not sim.of("CANCEL")
        assert gw.metrics.value("vsgw_gb28181_late_2xx_total") == 1
        assert ok.status == 200 and not gw.gb28181.player.dialogs
    finally:
        await sim.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_busy_answer_is_acked_in_its_transaction_and_logged_once(make_gateway, transport, caplog) -> None:
    gw, sim, dev = await pair(make_gateway, transport, invite_timeout=5.0)
    cid = sim.cfg.channel_ids()[0]
    try:
        caplog.clear()

        async def device() -> None:
            invite, peer, _ = await sim.nth("INVITE")
            sim.answer(invite, peer, 100)
            sim.answer(invite, peer, 486)

        answering = asyncio.create_task(device())
        with pytest.raises(DeviceRefused) as err:
            await gw.gb28181.player.invite(dev, cid)
        await answering
        assert err.value.status == 486
        invite = sim.of("INVITE")[0][0]
        ack, peer, _ = await sim.nth("ACK")
        assert ack.branch == invite.branch and ack.uri == invite.uri
        assert param(ack.get("to") or "", "tag") == sim.tag
        if transport == "udp":  # a retransmitted 486 (our ACK was lost) is ACKed again while Timer D runs
            sim.endpoint.send(sim.endpoint._answered[(invite.branch, "INVITE", invite.call_id)][0], peer)
            again, _, _ = await sim.nth("ACK", 2)
            assert again.encode() == ack.encode()
        outcomes = [r for r in caplog.records if r.name == "adapters.gb28181.dialog" and r.levelno == logging.INFO]
        assert len(outcomes) == 1 and DEV in outcomes[0].getMessage() and "486" in outcomes[0].getMessage()
        assert not [r for r in caplog.records if r.name == "adapters.gb28181.transaction"]  # INFO: no dumps
        assert gw.metrics.value("vsgw_gb28181_invite_total", result="refused", session="Play") == 1
    finally:
        await sim.stop()


async def test_r1_node_log_level_debug_logs_invite_messages_in_full(make_gateway, caplog) -> None:
    gw = await make_gateway(node={"log_level": "DEBUG"}, sip=sip(invite_timeout=5.0))
    try:
        sim = Scripted(SimConfig("127.0.0.1", gw.gb28181.server.port))
        await sim.start()
        cid = sim.cfg.channel_ids()[0]
        await until(lambda: cid in gw.registry.channels)
        caplog.clear()

        async def device() -> None:
            invite, peer, _ = await sim.nth("INVITE")
            sim.answer(invite, peer, 488)

        answering = asyncio.create_task(device())
        with pytest.raises(DeviceRefused):
            await gw.gb28181.player.invite(gw.gb28181.server.devices.get(DEV), cid)
        await answering
        dumps = [r.getMessage() for r in caplog.records if r.name == "adapters.gb28181.transaction"]
        assert any(f"INVITE sip:{cid}@" in m and "y=" in m for m in dumps)  # the request with its SDP
        assert any("SIP/2.0 488" in m for m in dumps)
        await sim.stop()
    finally:
        logging.getLogger("adapters.gb28181").setLevel(logging.INFO)
