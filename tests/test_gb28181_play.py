"""GB/T 28181 live and playback media end to end (R1): the simulator registers, the hub opens a
channel, the gateway INVITEs, PS/RTP arrives, and a hub reader gets H.264 that PyAV decodes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import av
import pytest

from adapters.gb28181.sdp import Sdp
from adapters.gb28181.simulator import Quirks, SimConfig, Simulator

from .test_gb28181_signalling import sip, until
from gateway.policy import InternalAccess

TEST_READER = InternalAccess("test")


async def setup_pair(make_gateway, media_transport: str = "udp", sim_transport: str = "udp",
                     quirks: Quirks | None = None, **sip_kw):
    gw = await make_gateway(sip=sip(media_transport=media_transport, **sip_kw))
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, transport=sim_transport,
                              quirks=quirks or Quirks()))
    await sim.start()
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
    return gw, sim, cid


async def decoded_frames(gw, cid: str, want: int = 10, timeout: float = 15.0) -> int:
    decoder = av.CodecContext.create("h264", "r")
    frames = 0
    with gw.hub.subscribe(TEST_READER, cid, name="test", limits=gw.reader_limits) as reader:
        async with asyncio.timeout(timeout):
            async for unit in reader:
                assert unit.codec == "h264"
                for packet in decoder.parse(unit.data):
                    frames += len(decoder.decode(packet))
                if frames >= want:
                    return frames
    return frames


@pytest.mark.parametrize(("media", "signalling"), [("udp", "udp"), ("tcp-passive", "tcp"), ("tcp-active", "udp")])
async def test_r1_live_video_reaches_hub_reader_as_decodable_h264(make_gateway, media, signalling) -> None:
    gw, sim, cid = await setup_pair(make_gateway, media, signalling)
    try:
        assert await decoded_frames(gw, cid) >= 10
        invite = await sim.wait_for(lambda e: e[0] == "INVITE")
        offer: Sdp = invite[2]
        assert offer.session == "Play" and offer.direction == "recvonly"
        assert offer.ssrc is not None and len(offer.ssrc) == 10 and offer.ssrc[0] == "0"
        assert offer.transport == media
        # the hub's last reader left: after the linger the gateway hangs up
        await sim.wait_for(lambda e: e[0] == "BYE", timeout=5)
        assert not sim.sessions
    finally:
        await sim.stop()
    assert gw.metrics.value("vsgw_gb28181_invite_total", result="ok", session="Play") == 1


async def test_r1_device_answering_with_its_own_ssrc_still_streams(make_gateway) -> None:
    gw, sim, cid = await setup_pair(make_gateway, quirks=Quirks(own_ssrc=True))
    try:
        assert await decoded_frames(gw, cid, want=5) >= 5
        assert gw.metrics.value("vsgw_gb28181_ssrc_rebound_total") == 1
    finally:
        await sim.stop()


async def test_r1_silent_stream_is_reinvited(make_gateway) -> None:
    gw, sim, cid = await setup_pair(make_gateway, silence_timeout=1.0)
    try:
        with gw.hub.subscribe(TEST_READER, cid, name="test", limits=gw.reader_limits) as reader:
            await asyncio.wait_for(reader.get(), 10)
            first = next(iter(sim.sessions.values()))
            await first.sender.close()  # the device keeps the dialog but stops sending
            await until(lambda: gw.metrics.value("vsgw_gb28181_silent_streams_total") == 1, timeout=6)
            await until(lambda: gw.metrics.value("vsgw_gb28181_invite_total", result="ok", session="Play") == 2)
            unit = await asyncio.wait_for(reader.get(), 10)  # video again, from the second INVITE
            assert unit.codec == "h264"
        invites = [e for e in sim.received if e[0] == "INVITE"]
        assert len(invites) == 2 and invites[0][2].ssrc != invites[1][2].ssrc
    finally:
        await sim.stop()


async def test_r1_playback_with_mansrtsp_and_end_of_file(make_gateway) -> None:
    gw, sim, cid = await setup_pair(make_gateway, silence_timeout=120)  # only MediaStatus 121 can end it soon
    adapter = gw.gb28181
    end = datetime.now(UTC).replace(microsecond=0)  # the adapter speaks aware UTC; the device local time
    start = end - timedelta(minutes=10)
    try:
        records = await adapter.query_records(cid, start, end)
        assert len(records) == 2 and records[0].start == start and records[0].end == end
        units = 0
        async with asyncio.timeout(30):  # far below the 120 s silence timeout: the end of file ended it
            async for unit in adapter.open_playback(TEST_READER, cid, start, end):
                units += 1
                if units == 3:
                    await adapter.playback_control(cid, scale=2.0)
                    await adapter.playback_control(cid, seek=30)
                    await adapter.playback_control(cid, pause=True)
        # the stream ended on its own: the device's MediaStatus 121 (after playback_seconds)
        assert 5 <= units <= sim.cfg.playback_seconds * sim.cfg.fps
        invite = (await sim.wait_for(lambda e: e[0] == "INVITE"))[2]
        assert invite.session == "Playback" and invite.uri == f"{cid}:0"
        assert (invite.start, invite.end) == (int(start.timestamp()), int(end.timestamp()))
        assert invite.ssrc[0] == "1"
        infos = [e[2] for e in sim.received if e[0] == "INFO"]
        assert "Scale: 2.00" in infos[0] and infos[0].startswith("PLAY MANSRTSP/1.0")
        assert "Range: npt=30-" in infos[1]
        assert infos[2].startswith("PAUSE MANSRTSP/1.0") and "PauseTime: now" in infos[2]
        assert "CSeq: 3" in infos[2]
    finally:
        await sim.stop()


async def test_r1_download_offers_speed_and_ends_on_media_status(make_gateway) -> None:
    gw, sim, cid = await setup_pair(make_gateway)
    end = datetime.now(UTC).replace(microsecond=0)  # the adapter speaks aware UTC; the device local time
    dev = gw.gb28181.device_of(cid)
    try:
        units = [u async for u in gw.gb28181.player.download(dev, cid, end - timedelta(minutes=1), end, speed=4)]
        assert units and units[0].codec == "h264"
        offer = (await sim.wait_for(lambda e: e[0] == "INVITE"))[2]
        assert offer.session == "Download" and offer.speed == 4 and offer.ssrc[0] == "1"
        assert not gw.gb28181.player.dialogs  # ended and hung up
    finally:
        await sim.stop()


async def test_r1_substream_offered_with_2022_streamnumber(make_gateway) -> None:
    gw, sim, cid = await setup_pair(make_gateway)
    try:
        with gw.hub.subscribe(TEST_READER, cid, substream=1, name="test", limits=gw.reader_limits) as reader:
            assert (await asyncio.wait_for(reader.get(), 10)).codec == "h264"
        offer = (await sim.wait_for(lambda e: e[0] == "INVITE"))[2]
        assert offer.substream == 1
    finally:
        await sim.stop()
