"""A real third-party SIP peer (sipp, Debian sip-tester) as a GB/T 28181 device over UDP and TCP
(R1): digest REGISTER, keepalive, Catalog and DeviceInfo answers, INVITE/ACK/BYE, unregister."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .test_gb28181_signalling import sip, until

HERE = Path(__file__).parent / "sipp"
DEV = "34020000001110000009"
CHAN = "34020000001320000009"


async def run_sipp(port: int, transport: str, hold_ms: int, password: str = "sipp-pw") -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sipp", f"127.0.0.1:{port}", "-sf", str(HERE / "device.xml"), "-oocsf", str(HERE / "device_ooc.xml"),
        "-s", "34020000002000000001", "-key", "dev", DEV, "-key", "chan", CHAN, "-key", "realm", "3402000000",
        "-d", str(hold_ms), "-au", DEV, "-ap", password, "-i", "127.0.0.1", "-p", "0",
        "-t", "t1" if transport == "tcp" else "u1", "-m", "1", "-nostdin", "-timeout", "30s",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r1_sipp_device_registers_answers_catalog_and_invite(make_gateway, transport) -> None:
    gw = await make_gateway(sip=sip(password="sipp-pw", invite_timeout=5, silence_timeout=30))
    proc = await run_sipp(gw.gb28181.server.port, transport, hold_ms=3000)
    try:
        server = gw.gb28181.server
        await until(lambda: server.devices.get(DEV) is not None and server.devices.get(DEV).online, timeout=10)
        dev = server.devices.get(DEV)
        assert dev.peer.transport == transport and dev.gb_version == "2.0"
        await until(lambda: CHAN in gw.registry.channels, timeout=10)
        ch = gw.registry.channels[CHAN]
        assert ch.name == "sipp camera" and ch.online and not ch.ptz and ch.civil_code == "340200"
        assert dev.info.get("manufacturer") == "SIPp"
        await until(lambda: gw.metrics.value("vsgw_gb28181_keepalive_total", result="ok") == 1)
        # INVITE: sipp answers 200 with our y= echoed; we ACK, then hang up with BYE
        inv = await gw.gb28181.player.invite(dev, CHAN)
        assert inv.answer.ssrc is not None and inv.answer.ssrc == f"0{server.cfg.realm[3:8]}0001"
        assert inv.to_tag
        await inv.close()
        rc = await asyncio.wait_for(proc.wait(), 20)
        err = (await proc.stderr.read()).decode(errors="replace")
        assert rc == 0, err[-2000:]
        assert not dev.online  # the scenario ends with Expires: 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_r1_sipp_device_with_wrong_password_gets_403(make_gateway) -> None:
    gw = await make_gateway(sip=sip(password="sipp-pw"))
    proc = await run_sipp(gw.gb28181.server.port, "udp", hold_ms=100, password="not-it")
    rc = await asyncio.wait_for(proc.wait(), 20)
    assert rc != 0  # the scenario expected 200 and got 403
    assert gw.gb28181.server.devices.get(DEV) is None
    assert gw.metrics.value("vsgw_gb28181_register_total", result="wrong_password") == 1
