"""PTZ (R1): the 8-byte PTZCmd codec, and commands reaching the simulated device as correct
DeviceControl messages through ``Adapter.ptz`` and ``POST /api/cameras/{id}/ptz`` behind the gate."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest

from adapters.base import PtzCommand
from adapters.gb28181 import ptz
from adapters.gb28181.simulator import SimConfig, Simulator
from tests.conftest import auth, synthetic
from tests.people import FAST_ARGON2, bearer, person, trail

from .test_gb28181_signalling import sip, until


def test_r1_ptzcmd_bytes_match_the_standard() -> None:
    assert ptz.encode(PtzCommand()) == "A50F0100000000B5"  # stop
    right = bytes.fromhex(ptz.encode(PtzCommand(pan=1.0)))
    assert right[:4] == bytes([0xA5, 0x0F, 0x01, 0x01]) and right[4] == 0xFF and right[7] == sum(right[:7]) % 256
    up_zoom_in = bytes.fromhex(ptz.encode(PtzCommand(tilt=0.5, zoom=1.0)))
    assert up_zoom_in[3] == 0x08 | 0x10 and up_zoom_in[5] == 128 and up_zoom_in[6] == 0xF0
    preset = bytes.fromhex(ptz.encode(PtzCommand(preset=7, preset_action="set")))
    assert (preset[3], preset[5]) == (0x81, 7)
    assert bytes.fromhex(ptz.encode(PtzCommand(preset=7, preset_action="delete")))[3] == 0x83
    assert bytes.fromhex(ptz.encode(PtzCommand(focus=-1.0)))[3] == 0x42
    assert bytes.fromhex(ptz.encode(PtzCommand(iris=1.0)))[3] == 0x44


@pytest.mark.parametrize("cmd", [PtzCommand(pan=-0.5, tilt=-1.0), PtzCommand(zoom=-1.0), PtzCommand(preset=3),
                                 PtzCommand(focus=1.0), PtzCommand(iris=-1.0), PtzCommand()])
def test_r1_ptzcmd_round_trips(cmd: PtzCommand) -> None:
    back = ptz.decode(ptz.encode(cmd))
    for axis in ("pan", "tilt", "zoom", "focus", "iris"):
        assert (getattr(back, axis) > 0) == (getattr(cmd, axis) > 0)
        assert (getattr(back, axis) < 0) == (getattr(cmd, axis) < 0)
    assert back.preset == cmd.preset


def test_r1_ptzcmd_with_bad_checksum_rejected() -> None:
    with pytest.raises(ValueError):
        ptz.decode("A50F0100000000B6")


async def test_r1_ptz_over_http_reaches_the_device(make_gateway) -> None:
    gw = await make_gateway(sip=sip(), cameras=[synthetic("cam-plain")])
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port))
    await sim.start()
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels)
    base = f"http://127.0.0.1:{gw.http_port}/api/cameras"
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.post(f"{base}/{cid}/ptz", json={"pan": 1, "zoom": 0.5}) as r:
                assert r.status == 200, await r.text()
            async with http.post(f"{base}/{cid}/ptz", json={"preset": 12, "preset_action": "goto"}) as r:
                assert r.status == 200
            async with http.post(f"{base}/{cid}/ptz", json={}) as r:
                assert r.status == 200 and (await r.json())["stop"]
            async with http.post(f"{base}/{cid}/ptz", json={"pan": 3}) as r:
                assert r.status == 400 and (await r.json())["field"] == "pan"
            async with http.post(f"{base}/nope/ptz", json={"pan": 1}) as r:
                assert r.status == 404
            async with http.post(f"{base}/cam-plain/ptz", json={"pan": 1}) as r:
                assert r.status == 501
            async with aiohttp.ClientSession() as anon, anon.post(f"{base}/{cid}/ptz", json={"pan": 1}) as r:
                assert r.status == 401
        await until(lambda: sum(e[1] == "DeviceControl" for e in sim.received) == 3)
        moves = [e[2] for e in sim.received if e[1] == "DeviceControl"]
        assert all(m["target"] == cid for m in moves)
        assert moves[0]["command"].pan > 0 and moves[0]["command"].zoom > 0 and moves[0]["command"].tilt == 0
        assert moves[1]["command"].preset == 12 and moves[1]["command"].preset_action == "goto"
        assert moves[2]["ptzcmd"] == "A50F0100000000B5"
    finally:
        await sim.stop()


async def test_r1_ptz_refused_by_policy_never_reaches_the_device(make_gateway) -> None:
    """A police officer (a role without PTZ) and a wall operator below the camera's security level
    are refused by the real gate with its reason; each refusal is in the audit trail."""
    gw = await make_gateway(sip=sip(), identity=FAST_ARGON2)
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port))
    await sim.start()
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels)
    base = gw.resource_resolver
    gw.resource_resolver = lambda c: replace(base(c), security_level=3)
    officer = await person(gw, "li", "police_officer", clearance=5, tier="police")
    operator = await person(gw, "op", "wall_operator", clearance=1)
    url = f"http://127.0.0.1:{gw.http_port}/api/cameras/{cid}/ptz"
    try:
        async with aiohttp.ClientSession() as http:
            for token, why in ((officer, "may not ptz"), (operator, "clearance 1 is below security level 3")):
                async with http.post(url, json={"tilt": 1}, headers=bearer(token)) as r:
                    assert r.status == 403 and why in (await r.json())["message"]
        rows = await trail(gw, action="ptz")
        assert [(r.actor, r.resource, r.decision) for r in rows] == [
            ("user:li", f"camera:{cid}", "deny"), ("user:op", f"camera:{cid}", "deny")]
        assert not any(e[1] == "DeviceControl" for e in sim.received)
    finally:
        await sim.stop()
