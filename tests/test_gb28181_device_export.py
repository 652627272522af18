"""Export from the device (R1, R10, R11): a camera the gateway holds no recording of is exported by
INVITE Download at ``downloadspeed`` under the gate's EXPORT decision (an approved retrieval grant),
written as the same signed MP4 and manifest as a gateway export; the job's progress is the media
time received against the range, the device's MediaStatus 121 completes it and a device that
stalls fails it with the reason. Real HTTP and SIP with the simulator, whose file covers the range."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import av

from gateway.recording.manifest import verify
from gateway.recording.web import PART

from .people import FAST_ARGON2, approved_retrieval, bearer, person, trail
from .test_gb28181_signalling import sip, start_sim, until

RANGE_SECONDS = 8


async def call(gw: Any, method: str, path: str, token: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(
            method, f"http://127.0.0.1:{gw.http_port}{path}", headers=bearer(token), **kw) as resp:
        body = await resp.read()
        return resp.status, (await resp.json(content_type=None) if resp.content_type == "application/json" else body)


async def setup(make_gateway) -> tuple[Any, Any, str, datetime, str, str]:
    gw = await make_gateway(sip=sip(silence_timeout=1.0), identity=FAST_ARGON2)
    sim = await start_sim(gw, honour_mansrtsp=True)
    cid = sim.cfg.channel_ids()[0]
    await until(lambda: cid in gw.registry.channels and gw.registry.channels[cid].online)
    now = datetime.now(UTC).replace(microsecond=0)
    officer, grant = await approved_retrieval(gw, [cid], now - timedelta(hours=2), now - timedelta(hours=1))
    return gw, sim, cid, now - timedelta(hours=2), officer, grant


def export_body(start: datetime, grant: str, **kw: Any) -> dict[str, Any]:
    return {"start": start.isoformat(), "end": (start + timedelta(seconds=RANGE_SECONDS)).isoformat(),
            "reason": "case QD-2026-0042", "grant_id": grant, **kw}


async def job_states(gw: Any, token: str, export_id: str, timeout: float = 20) -> list[dict[str, Any]]:
    """Every state the job was seen in, polled until it finished."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not seen or seen[-1]["status"] not in ("done", "failed"):
            status, job = await call(gw, "GET", f"/api/exports/{export_id}", token)
            assert status == 200
            seen.append(job)
            await asyncio.sleep(0.05)
    return seen


async def test_r1_device_download_is_an_export_job_with_progress_and_a_signed_manifest(make_gateway) -> None:
    gw, sim, cid, start, officer, grant = await setup(make_gateway)
    try:
        status, job = await call(gw, "POST", f"/api/recordings/{cid}/export", officer, json=export_body(start, grant))
        assert status == 202 and job["detail"] == {"source": "device"}  # the gateway holds nothing: the device
        seen = await job_states(gw, officer, job["id"])
        assert seen[-1]["status"] == "done" and seen[-1]["progress"] == 1.0, seen[-1]
        running = [s["progress"] for s in seen if s["status"] == "running"]
        assert any(0 < p < 1 for p in running) and running == sorted(running)  # rises with the media received
        offer = next(e[2] for e in sim.received if e[0] == "INVITE")
        assert offer.session == "Download" and offer.speed == 4  # [sip] download_speed's default
        assert (offer.start, offer.end) == (int(start.timestamp()), int(start.timestamp()) + RANGE_SECONDS)

        status, video = await call(gw, "GET", f"/api/exports/{job['id']}/file", officer)
        assert status == 200
        part = gw.app[PART]
        row, _ = await part.exports.get(job["id"])
        path: Path = part.exports.path_of(row)
        assert path.read_bytes() == video
        manifest = verify(path, part.key.public_key())
        assert manifest["source"]["kind"] == "device" and manifest["source"]["ended_by"] == "MediaStatus 121"
        assert manifest["segments"] == [] and manifest["grant_id"] == grant
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            seconds = float(stream.duration * stream.time_base)
        assert frames == manifest["export"]["frames"] == RANGE_SECONDS * sim.cfg.fps
        assert abs(seconds - RANGE_SECONDS) < 0.2  # media time, not the 2 s the download took at 4x
        exported = await trail(gw, action="recording.export", resource=f"camera:{cid}")
        assert [r.extra["source"] for r in exported] == ["device"]
        asked = await trail(gw, action="export", resource=f"camera:{cid}", decision="allow")
        assert asked and asked[-1].extra["grant"] == grant
    finally:
        await sim.stop()


async def test_r1_a_device_that_stalls_fails_its_export_with_the_reason(make_gateway) -> None:
    gw, sim, cid, start, officer, grant = await setup(make_gateway)
    try:
        status, job = await call(gw, "POST", f"/api/recordings/{cid}/export", officer,
                                 json=export_body(start, grant, source="device"))
        assert status == 202
        await until(lambda: sim.sessions and gw.app[PART].exports.progress.get(job["id"], 0) > 0.1)
        (session,) = sim.sessions.values()
        session.playhead.running.clear()  # the device stops sending, without MediaStatus 121
        seen = await job_states(gw, officer, job["id"])
        assert seen[-1]["status"] == "failed"
        assert "download stalled: the device sent no media for 1 s" in seen[-1]["error"]
        await sim.wait_for(lambda e: e[0] == "BYE")  # the dialog was hung up
        assert gw.metrics.value("vsgw_gb28181_playback_stalled_total", session="Download") == 1
    finally:
        await sim.stop()


async def test_r11_device_export_needs_the_export_decision_and_an_explicit_gateway_source_finds_nothing(
        make_gateway) -> None:
    gw, sim, cid, start, officer, grant = await setup(make_gateway)
    viewer = await person(gw, "sun", "police_officer", clearance=3, tier="police")
    try:
        status, body = await call(gw, "POST", f"/api/recordings/{cid}/export", viewer,
                                  json=export_body(start, grant, source="device"))
        assert status == 403 and body["error"] == "forbidden"  # may view; copying needs its own grant
        status, body = await call(gw, "POST", f"/api/recordings/{cid}/export", officer,
                                  json=export_body(start, grant, source="gateway"))
        assert status == 404 and body["error"] == "not_recorded"
        status, body = await call(gw, "POST", f"/api/recordings/{cid}/export", officer,
                                  json=export_body(start, grant, source="tape"))
        assert status == 400 and body["field"] == "source"
        assert not [e for e in sim.received if e[0] == "INVITE"]  # nothing refused reached the device
    finally:
        await sim.stop()
