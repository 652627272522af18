"""``vsgw gb-sim`` as a real process against a gateway's SIP server (R1): it registers over TCP and
its channel joins the registry; stopping it (SIGINT) unregisters it."""

from __future__ import annotations

import asyncio
import signal
import sys

from .test_gb28181_signalling import sip, until


async def test_r1_gb_sim_command_registers_a_device(make_gateway) -> None:
    gw = await make_gateway(sip=sip(password="cli-pw"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gb-sim", "--server", f"127.0.0.1:{gw.gb28181.server.port}",
        "--password", "cli-pw", "--device-id", "34020000001320000077", "--transport", "tcp", "--channels", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"registered" in line and b"34020000001310000001, 34020000001310000002" in line
        server = gw.gb28181.server
        dev = server.devices.get("34020000001320000077")
        assert dev is not None and dev.online and dev.peer.transport == "tcp"
        await until(lambda: len(gw.gb28181.channels()) == 2)
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
        await until(lambda: not dev.online)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
