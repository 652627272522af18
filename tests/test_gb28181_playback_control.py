"""Device playback steered by its session over real HTTP (R1, R11): a camera the gateway holds no
recording of plays from the GB/T 28181 device through ``/api/recordings/{cid}/play``; the
response names its session, and ``POST /api/playback/{session}/control`` pauses, resumes, seeks and
speeds it up with MANSRTSP that the simulator obeys (its file covers the INVITE's range, its
pictures carry the file position). Only the subject that opened it may steer it, a seek stays in
the window the gate allowed and the speed in the playback bound."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import av

from adapters.gb28181.simulator import Simulator

from .people import FAST_ARGON2, bearer, person, trail
from .test_gb28181_signalling import sip, start_sim, until

FILE_SECONDS = 20


async def device_camera(make_gateway, **sip_kw: Any) -> tuple[Any, Simulator, str]:
    gw = await make_gateway(sip=sip(**sip_kw), identity=FAST_ARGON2)
    sim = await start_sim(gw, honour_mansrtsp=True)
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
    return gw, sim, cid


def span(seconds: int = FILE_SECONDS) -> tuple[datetime, datetime]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return start, start + timedelta(seconds=seconds)


def base(gw: Any) -> str:
    return f"http://127.0.0.1:{gw.http_port}"


async def control(http: aiohttp.ClientSession, gw: Any, token: str, session: str,
                  **body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{base(gw)}/api/playback/{session}/control", json=body, headers=bearer(token)) as r:
        return r.status, await r.json()


async def offset(http: aiohttp.ClientSession, gw: Any, token: str, cid: str) -> float:
    async with http.get(f"{base(gw)}/api/playback", params={"camera": cid}, headers=bearer(token)) as r:
        (state,) = (await r.json())["playbacks"]
        return state["offset"]


async def rises_past(http: aiohttp.ClientSession, gw: Any, token: str, cid: str, at_least: float) -> None:
    async with asyncio.timeout(10):
        while await offset(http, gw, token, cid) < at_least:
            await asyncio.sleep(0.05)


def infos(sim: Simulator) -> list[str]:
    return [e[2] for e in sim.received if e[0] == "INFO"]


async def test_r1_device_playback_over_http_is_paused_resumed_seeked_and_sped_up_by_its_session(make_gateway) -> None:
    gw, sim, cid = await device_camera(make_gateway, silence_timeout=1.0)  # a pause outlasts the silence timeout
    li = await person(gw, "li", "police_officer", clearance=3, tier="police")
    start, end = span()
    try:
        async with aiohttp.ClientSession() as http, http.get(
                f"{base(gw)}/api/recordings/{cid}/play", params={"start": start.isoformat(), "end": end.isoformat()},
                headers=bearer(li)) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
            assert resp.headers["X-Vsgw-Source"] == "device"
            session = resp.headers["X-Vsgw-Session"]
            assert session in gw.sessions.open
            invite = (await sim.wait_for(lambda e: e[0] == "INVITE"))[2]
            assert invite.session == "Playback" and (invite.start, invite.end) == (int(start.timestamp()),
                                                                                  int(end.timestamp()))
            await rises_past(http, gw, li, cid, 0.2)

            status, state = await control(http, gw, li, session, action="pause")
            assert status == 200 and state["paused"] is True
            assert infos(sim)[-1].startswith("PAUSE MANSRTSP/1.0") and "PauseTime: now" in infos(sim)[-1]
            paused_at = await offset(http, gw, li, cid)
            try:  # paused for twice the silence timeout: no BYE, the session stays
                await sim.wait_for(lambda e: e[0] == "BYE", timeout=2.2)
                raise AssertionError("the paused playback was hung up")
            except TimeoutError:
                pass
            assert session in gw.sessions.open
            assert await offset(http, gw, li, cid) - paused_at < 0.2  # the device really stopped sending

            status, state = await control(http, gw, li, session, action="resume", speed=2)
            assert status == 200 and state == {**state, "paused": False, "speed": 2.0}
            assert "Range: npt=now-" in infos(sim)[-1] and "Scale: 2.00" in infos(sim)[-1]
            await rises_past(http, gw, li, cid, paused_at + 0.5)

            target = start + timedelta(seconds=FILE_SECONDS - 3)  # ISO time: 3 s before the end of the file
            status, state = await control(http, gw, li, session, action="seek", position=target.isoformat(),
                                          speed=4)
            assert status == 200 and state["offset"] == FILE_SECONDS - 3 and state["speed"] == 4.0
            assert f"Range: npt={FILE_SECONDS - 3}-" in infos(sim)[-1] and "Scale: 4.00" in infos(sim)[-1]
            async with asyncio.timeout(10):  # 3 s of file at 4x: the device's end of file ends the response
                body = await resp.read()
        assert body[4:8] == b"ftyp" and b"moof" in body
        with av.open(io.BytesIO(body)) as container:  # a player meets no gap at the pause, the seek or a speed
            times = [float(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None]
        assert len(times) > 50 and max(b - a for a, b in zip(times, times[1:])) < 0.1
        ended = await trail(gw, action="session.end", resource=f"camera:{cid}")
        assert len(ended) == 1 and ended[0].extra["session"] == session
        assert ended[0].extra["end"] >= target.isoformat()  # the range read reaches the seek target
        controls = await trail(gw, action="playback.control", resource=f"camera:{cid}")
        assert [(r.reason, r.extra["session"]) for r in controls] == [
            ("pause", session), ("resume", session), ("seek", session)]
        assert {r.actor for r in controls} == {ended[0].actor}
        assert (await sim.wait_for(lambda e: e[0] == "BYE"))  # the dialog was hung up after the end of file
    finally:
        await sim.stop()


async def test_r11_only_the_opener_steers_a_playback_seeks_stay_in_the_window_speed_in_the_bound(
        make_gateway) -> None:
    gw, sim, cid = await device_camera(make_gateway)
    li = await person(gw, "li", "police_officer", clearance=3, tier="police")
    zhao = await person(gw, "zhao", "police_officer", clearance=3, tier="police")
    start, end = span()
    try:
        async with aiohttp.ClientSession() as http, http.get(
                f"{base(gw)}/api/recordings/{cid}/play", params={"start": start.isoformat(), "end": end.isoformat()},
                headers=bearer(li)) as resp:
            session = resp.headers["X-Vsgw-Session"]
            await rises_past(http, gw, li, cid, 0.1)
            sent = len(infos(sim))
            cases = [
                (zhao, {"action": "pause"}, 403, "forbidden"),  # another officer who may view the same footage
                (li, {"action": "seek", "position": (start - timedelta(seconds=1)).isoformat()}, 403, "forbidden"),
                (li, {"action": "seek", "position": FILE_SECONDS + 5}, 403, "forbidden"),
                (li, {"action": "seek", "position": "yesterday"}, 400, "bad_request"),
                (li, {"action": "seek"}, 400, "bad_request"),
                (li, {"action": "resume", "speed": 32}, 400, "bad_request"),
                (li, {"action": "resume", "speed": 0.1}, 400, "bad_request"),
                (li, {"action": "rewind"}, 400, "bad_request"),
            ]
            for token, body, want, code in cases:
                status, answer = await control(http, gw, token, session, **body)
                assert (status, answer["error"]) == (want, code), (body, answer)
            status, answer = await control(http, gw, li, "no-such-session", action="pause")
            assert status == 404
            async with http.get(f"{base(gw)}/api/playback", headers=bearer(zhao)) as r:
                assert (await r.json())["playbacks"] == []  # zhao does not even see li's playback
            assert len(infos(sim)) == sent  # nothing refused reached the device
            status, state = await control(http, gw, li, session, action="seek", position=FILE_SECONDS - 1)
            assert status == 200 and f"Range: npt={FILE_SECONDS - 1}-" in infos(sim)[-1]
            async with asyncio.timeout(10):
                await resp.read()
        assert gw.metrics.value("vsgw_playback_control_total", result="forbidden") == 3
        controls = await trail(gw, action="playback.control", resource=f"camera:{cid}")
        assert [r.reason for r in controls] == ["seek"]  # li's only; zhao's refusal reached neither device nor trail
    finally:
        await sim.stop()
