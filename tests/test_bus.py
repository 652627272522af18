"""Event bus: in-process and ZeroMQ (XPUB/XSUB proxy) deliver the same typed events."""

from __future__ import annotations

import asyncio
import json

import pytest
import zmq
import zmq.asyncio

from gateway.bus import Alarm, ChannelState, LocalBus
from gateway.bus.zmq import ZmqBus
from tests.conftest import free_port


@pytest.fixture(params=["ipc", "tcp"])
def ipc(request, tmp_path) -> tuple[str, str]:  # noqa: ANN001
    """Both transports a deployment uses: a Unix socket on one host, loopback TCP across hosts."""
    if request.param == "ipc":
        return f"ipc://{tmp_path}/bus-in", f"ipc://{tmp_path}/bus-out"
    return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"



async def test_local_bus_delivers_by_topic_prefix() -> None:
    bus = LocalBus("n1")
    channels = bus.subscribe("channel.")
    everything = bus.subscribe()
    bus.publish(ChannelState(channel_id="c1", online=True))
    bus.publish(Alarm(channel_id="c1", kind="motion"))
    got = await asyncio.wait_for(channels.get(), 1)
    assert isinstance(got, ChannelState) and got.node == "n1"
    assert [type(await everything.get()) for _ in range(2)] == [ChannelState, Alarm]
    assert channels._queue.empty()


async def test_bounded_subscription_drops_oldest_and_counts() -> None:
    bus = LocalBus()
    sub = bus.subscribe(maxsize=2)
    for i in range(5):
        bus.publish(ChannelState(channel_id=f"c{i}", online=True))
    assert sub.dropped == 3
    assert (await sub.get()).channel_id == "c3"


async def test_zmq_bus_shares_events_between_two_nodes(ipc) -> None:  # noqa: ANN001
    a = ZmqBus("node-a", *ipc, run_proxy=True)
    b = ZmqBus("node-b", *ipc)
    await a.start()
    await b.start()
    try:
        sub_b = b.subscribe("alarm")
        sub_a = a.subscribe("alarm")
        a.publish(Alarm(channel_id="34020000001320000001", kind="video-loss", priority=1))
        for sub in (sub_a, sub_b):
            got = await asyncio.wait_for(sub.get(), 3)
            assert isinstance(got, Alarm) and got.node == "node-a" and got.priority == 1
    finally:
        await b.stop()
        await a.stop()


async def test_zmq_bus_counts_and_survives_malformed_messages(ipc) -> None:  # noqa: ANN001
    bus = ZmqBus("node-a", *ipc, run_proxy=True)
    await bus.start()
    ctx = zmq.asyncio.Context()
    rogue = ctx.socket(zmq.PUB)
    rogue.connect(ipc[0])
    try:
        sub = bus.subscribe("channel.")
        # a rogue publisher needs its own join before its messages flow: resend until counted
        for _ in range(100):
            await rogue.send_multipart([b"channel.state", b"{not json"])
            await rogue.send_multipart([b"channel.state", json.dumps({"topic": "nope"}).encode()])
            await asyncio.sleep(0.02)
            if bus.malformed >= 2:
                break
        assert bus.malformed >= 2
        bus.publish(ChannelState(channel_id="c9", online=False))
        assert (await asyncio.wait_for(sub.get(), 3)).channel_id == "c9"
    finally:
        rogue.close(linger=0)
        ctx.term()
        await bus.stop()
