"""GB/T 28181 up-cascade, live video for the superior (R1, R2, R11): vsgw B plays a channel of the lower
vsgw A with its own GB/T 28181 INVITE path; A answers from its hub under the gate's decision for the
superior's subject and sends PS over RTP; refusals are 403/404 and audited; either side's teardown
(B's BYE after its linger, A's gate closing the session, the link failing) ends the other's part."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import av
import pytest

from adapters.base import PtzCommand
from adapters.gb28181 import ptz
from adapters.gb28181.server import DeviceRefused
from gateway.media import AccessUnit
from gateway.policy import InternalAccess

from .people import trail
from .test_gb28181_cascade import EXCLUDED, LOWER, SECRET, SHARED, UPPER, lower_gateway, state  # noqa: F401
from .test_gb28181_signalling import sip, start_sim, until

SUBJECT = f"superior:{UPPER}"
TEST = InternalAccess("test")


async def cascaded(make_gateway, lower_gateway, **upper_sip: Any) -> tuple[Any, Any, Any]:  # noqa: F811
    upper = await make_gateway(sip=sip(**upper_sip))
    lower, events = await lower_gateway(upper.gb28181.server.port)
    await state(events, "registered")
    await until(lambda: SHARED in upper.registry.channels)
    return upper, lower, events


async def collect(reader: Any, n: int, into: list[AccessUnit] | None = None) -> list[AccessUnit]:
    out = [] if into is None else into
    async with asyncio.timeout(15):
        while len(out) < n:
            out.append(await reader.get())
    return out


def superior_readers(lower: Any) -> list[Any]:
    stream = lower.hub.streams.get(SHARED)
    return [r for r in stream.readers if r.name == SUBJECT] if stream is not None else []


async def test_r1_superior_plays_a_shared_channel_as_ps_over_rtp_from_the_lower_hub_intact(
        make_gateway, lower_gateway, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="adapters.gb28181.cascade.dialogs")
    upper, lower, _ = await cascaded(make_gateway, lower_gateway)
    local = lower.hub.subscribe(TEST, SHARED, name="local", limits=lower.reader_limits)  # a viewer on A
    seen_on_lower: list[AccessUnit] = []
    feeding = asyncio.create_task(collect(local, 10_000, seen_on_lower))
    try:
        with upper.hub.subscribe(TEST, SHARED, name="test", limits=upper.reader_limits) as reader:
            got = await collect(reader, 30)
            # one pull of the camera on A, read by the local viewer and the superior
            stream = lower.hub.streams[SHARED]
            assert {r.name for r in stream.readers} == {"local", SUBJECT} and stream.restarts == 0
            assert list(lower.hub.streams) == [SHARED]
        assert got[0].keyframe and {u.codec for u in got} == {"h264"}
        sent = {u.data for u in seen_on_lower}
        assert all(u.data in sent for u in got)  # every picture as A's hub had it, byte for byte
        decoder = av.CodecContext.create("h264", "r")
        frames = [f for u in got for p in decoder.parse(u.data) for f in decoder.decode(p)]
        assert len(frames) >= 25 and (frames[0].width, frames[0].height) == (320, 240)
        # B's reader left: after B's linger B hangs up, and A's reader for the superior ends
        await until(lambda: not superior_readers(lower) and not lower.cascade[0].dialogs.open)
    finally:
        local.close()
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
    assert lower.metrics.value("vsgw_cascade_invites_total", superior=UPPER, result="ok") == 1
    assert lower.metrics.value("vsgw_cascade_rtp_packets_total", superior=UPPER) >= 30
    (allowed,) = await trail(lower, actor=SUBJECT, action="pull_stream")
    assert (allowed.resource, allowed.decision, allowed.extra["egress"], allowed.extra["cmd"]) == (
        f"camera:{SHARED}", "allow", "sip", "INVITE")
    started = await trail(lower, actor=SUBJECT, action="session.start")
    ended = await trail(lower, actor=SUBJECT, action="session.end")
    assert len(started) == len(ended) == 1 and started[0].extra["session"] == ended[0].extra["session"]
    assert ended[0].reason == "ended by the client" and started[0].extra["kind"] == "live"
    lines = [r.getMessage() for r in caplog.records if r.name == "adapters.gb28181.cascade.dialogs"]
    assert len(lines) == 1 and SHARED in lines[0] and UPPER in lines[0] and "the superior sent BYE" in lines[0]


@pytest.mark.parametrize(("channel", "status", "why"), [(SECRET, 403, "the gate"), (EXCLUDED, 404, "share list")])
async def test_r2_a_channel_refused_to_the_superior_gets_403_or_404_audited(
        make_gateway, lower_gateway, channel, status, why) -> None:  # noqa: F811
    upper, lower, _ = await cascaded(make_gateway, lower_gateway)
    dev = upper.gb28181.server.devices.get(LOWER)
    with pytest.raises(DeviceRefused) as refused:
        await upper.gb28181.player.invite(dev, channel, "Play")
    assert refused.value.status == status
    assert lower.hub.streams.get(channel) is None  # the camera was never pulled for it
    assert lower.metrics.value("vsgw_cascade_invites_total", superior=UPPER,
                               result="refused" if status == 403 else "not_shared") == 1
    (asked,) = await trail(lower, actor=SUBJECT, action="pull_stream")
    assert asked.resource == f"camera:{channel}" and asked.decision == ("deny" if status == 403 else "allow")
    if status == 404:
        (withheld,) = await trail(lower, actor=SUBJECT, action="cascade.invite")
        assert withheld.decision == "deny" and withheld.reason == "not shared with this superior"
    assert not await trail(lower, actor=SUBJECT, action="session.start")


async def test_r11_the_lower_gate_closing_the_session_hangs_up_on_the_superior(make_gateway, lower_gateway) -> None:  # noqa: F811
    upper, lower, _ = await cascaded(make_gateway, lower_gateway)
    with upper.hub.subscribe(TEST, SHARED, name="test", limits=upper.reader_limits) as reader:
        await collect(reader, 3)
        (dialog,) = upper.gb28181.player.dialogs.values()
        assert lower.sessions.revoke(subject_id=SUBJECT, reason="the superior's access was revoked") == 1
        async with asyncio.timeout(5):
            await dialog.ended.wait()  # A's BYE reached B's dialog
    await until(lambda: not superior_readers(lower) and not lower.cascade[0].dialogs.open)
    (ended,) = await trail(lower, actor=SUBJECT, action="session.end")
    assert ended.reason == "the superior's access was revoked"


async def test_r1_live_dialogs_end_when_the_superior_is_gone(make_gateway, lower_gateway) -> None:  # noqa: F811
    # B's media silence is not noticed within the test: B would re-INVITE and A would answer
    upper, lower, events = await cascaded(make_gateway, lower_gateway, silence_timeout=60.0)
    reader = upper.hub.subscribe(TEST, SHARED, name="test", limits=upper.reader_limits)
    try:
        await collect(reader, 3)
        assert superior_readers(lower)

        async def dead(msg: Any, peer: Any) -> None:
            """The superior stops answering every request: no BYE, no keepalive answered."""

        upper.gb28181.server.endpoint.handler = dead
        failed = await state(events, "failed")
        await until(lambda: not superior_readers(lower) and not lower.cascade[0].dialogs.open)
    finally:
        reader.close()
    (ended,) = await trail(lower, actor=SUBJECT, action="session.end")
    assert ended.reason == f"the link failed: {failed.reason}"


async def test_r1_superior_listening_over_tcp_gets_rfc4571_framed_ps(make_gateway, lower_gateway) -> None:  # noqa: F811
    upper, lower, _ = await cascaded(make_gateway, lower_gateway, media_transport="tcp-passive")
    with upper.hub.subscribe(TEST, SHARED, name="test", limits=upper.reader_limits) as reader:
        got = await collect(reader, 30)
        (dialog,) = lower.cascade[0].dialogs.open.values()
        assert dialog.sender.transport == "tcp-passive" and dialog.sender.local_port > 0
    decoder = av.CodecContext.create("h264", "r")
    assert len([f for u in got for p in decoder.parse(u.data) for f in decoder.decode(p)]) >= 25
    await until(lambda: not superior_readers(lower) and not lower.cascade[0].dialogs.open)


async def test_r1_superior_ptz_on_a_shared_channel_reaches_the_device_below_under_the_gate(
        make_gateway, lower_gateway) -> None:  # noqa: F811
    upper = await make_gateway(sip=sip())
    lower, events = await lower_gateway(upper.gb28181.server.port, cameras=[], sip=sip())
    sim = await start_sim(lower, channels=1)
    try:
        (cid,) = sim.cfg.channel_ids()
        await until(lambda: cid in lower.registry.channels)
        await state(events, "registered")
        await upper.gb28181.sync_catalog(LOWER)
        assert cid in upper.registry.channels
        await upper.gb28181.ptz(cid, PtzCommand(pan=0.5, zoom=1.0))  # B's own PTZ path, as B's operator would
        await until(lambda: any(e[1] == "DeviceControl" for e in sim.received))
        (move,) = [e[2] for e in sim.received if e[1] == "DeviceControl"]
        assert move["target"] == cid and move["command"].pan > 0 and move["command"].zoom > 0
        (asked,) = await trail(lower, actor=SUBJECT, action="ptz")
        assert (asked.resource, asked.decision, asked.extra["egress"]) == (f"camera:{cid}", "allow", "sip")
        await until(lambda: lower.metrics.value("vsgw_cascade_ptz_total", superior=UPPER, result="done") == 1)
        (relayed,) = await trail(lower, actor=SUBJECT, action="cascade.ptz")
        assert relayed.decision == "done"
    finally:
        await sim.stop()


@pytest.mark.parametrize(("channel", "status"), [(SECRET, 403), (EXCLUDED, 404)])
async def test_r2_superior_ptz_on_a_refused_channel_gets_403_or_404(
        make_gateway, lower_gateway, channel, status) -> None:  # noqa: F811
    upper, lower, _ = await cascaded(make_gateway, lower_gateway)
    server = upper.gb28181.server
    with pytest.raises(DeviceRefused) as refused:
        await server.send_manscdp(server.devices.get(LOWER), "Control", "DeviceControl", channel, server.next_sn(),
                                  [("PTZCmd", ptz.encode(PtzCommand(pan=1.0)))])
    assert refused.value.status == status
    (asked,) = await trail(lower, actor=SUBJECT, action="ptz")
    assert asked.resource == f"camera:{channel}" and asked.decision == ("deny" if status == 403 else "allow")
    relayed = await trail(lower, actor=SUBJECT, action="cascade.ptz")
    assert [r.decision for r in relayed] == ([] if status == 403 else ["deny"])
    assert lower.metrics.value("vsgw_cascade_ptz_total", superior=UPPER, result="done") == 0
