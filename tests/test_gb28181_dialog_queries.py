"""GB/T 28181 queries run side by side (R1): answers are matched by (DeviceID, CmdType, SN), so a
device that answers DeviceInfo with its catalog, and DeviceInfo itself only later, holds nothing up."""

from __future__ import annotations

import asyncio

import pytest

from adapters.gb28181.manscdp import Manscdp
from adapters.gb28181.simulator import SimConfig, Simulator

from .test_gb28181_signalling import DEV, sip, until


class CatalogFirst(Simulator):
    """Answers the DeviceInfo query with a Catalog under that query's SN, and sends the DeviceInfo
    answer only once the Catalog query has arrived (a gateway asking one after the other stalls)."""

    def __init__(self, cfg: SimConfig) -> None:
        super().__init__(cfg)
        self.catalog_asked = asyncio.Event()

    async def _message(self, msg: Manscdp) -> None:
        cmd = msg.cmd.lower()
        if msg.kind == "query" and cmd == "deviceinfo":
            await self._note("MESSAGE", msg.cmd, msg.device_id)
            await self._answer_catalog(msg.sn)
            await self.catalog_asked.wait()
            await self.send_manscdp("Response", "DeviceInfo", [("DeviceName", "late"), ("Result", "OK"),
                                                               ("Model", "catalog-first")], sn=msg.sn)
            return
        if msg.kind == "query" and cmd == "catalog":
            self.catalog_asked.set()
        await super()._message(msg)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_deviceinfo_answered_with_a_catalog_does_not_hold_up_the_catalog_query(
        make_gateway, transport) -> None:
    # the DeviceInfo wait is far longer than the test may take: asked in turn, the catalog would wait it out
    gw = await make_gateway(sip=sip(request_timeout=60.0, catalog_timeout=60.0))
    sim = CatalogFirst(SimConfig("127.0.0.1", gw.gb28181.server.port, transport=transport, channels=2))
    await sim.start()
    try:
        dev = gw.gb28181.server.devices.get(DEV)
        ids = sim.cfg.channel_ids()
        await until(lambda: dev.info.get("model") == "catalog-first" and all(c in gw.registry.channels for c in ids))
        assert gw.metrics.value("vsgw_gb28181_catalog_total", result="complete") == 1
        assert gw.metrics.value("vsgw_gb28181_deviceinfo_total", result="ok") == 1
        # again, called directly: the catalog answer counted is the one to the Catalog query's SN
        sim.catalog_asked.clear()
        assert await asyncio.wait_for(gw.gb28181.refresh_catalog(DEV), 10) == 2
        assert gw.metrics.value("vsgw_gb28181_catalog_total", result="complete") == 2
    finally:
        await sim.stop()
