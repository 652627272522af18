"""R10 (QD 20(3), WX 29, WX 31): hash-chained segments, exports with an Ed25519-signed manifest that
``vsgw evidence verify`` checks offline and that fails on any changed byte, and policy-gated export."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import sys

import aiohttp
import av

from gateway.cli import main as vsgw
from gateway.recording.web import PART
from tests.conftest import TOKEN, auth
from tests.people import FAST_ARGON2, approved_retrieval, bearer, person, trail
from tests.test_recording_support import add_segment, encode, gray_pictures


SECOND_TOKEN = "second-token-91c2"  # a second person: another static token is another subject
SECOND = {"Authorization": f"Bearer {SECOND_TOKEN}"}


async def _recorded(gw, camera: str = "cam-e", segments: int = 3):  # noqa: ANN001, ANN202
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    rows, prev = [], None
    for i in range(segments):
        pictures = gray_pictures(50 + i)[i:]  # each segment's pictures differ, as a camera's do
        row = await add_segment(gw, camera, start + timedelta(seconds=2 * i), encode(pictures), prev)
        rows.append(row)
        prev = row.hash
    return rows


async def _export(http, base: str, camera: str, start: datetime, end: datetime, **extra) -> dict:  # noqa: ANN001
    body = {"start": start.isoformat(), "end": end.isoformat(), "reason": "traffic accident 2026-0417", **extra}
    async with http.post(f"{base}/api/recordings/{camera}/export", json=body) as r:
        job = await r.json()
        assert r.status == 202, job
    deadline = asyncio.get_running_loop().time() + 30
    while job["status"] in ("queued", "running"):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
        async with http.get(f"{base}/api/exports/{job['id']}") as r:
            job = await r.json()
    return job


async def _download(http, base: str, job: dict, out: Path) -> tuple[Path, Path]:  # noqa: ANN001
    paths = []
    for what in ("file", "manifest"):
        async with http.get(f"{base}/api/exports/{job['id']}/{what}") as r:
            assert r.status == 200
            path = out / r.content_disposition.filename
            path.write_bytes(await r.read())
            paths.append(path)
    return paths[0], paths[1]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


async def _recording_rows(gw) -> list[tuple[str, str]]:  # noqa: ANN001
    """(action, decision) of the recording part's own audit records, in order."""
    return [(r.action, r.decision) for r in await trail(gw) if r.action.startswith("recording.")]


async def test_r10_export_verifies_and_any_flipped_byte_fails(make_gateway, tmp_path, capsys) -> None:  # noqa: ANN001
    """An officer exports under an approved retrieval grant (R11): the manifest names the grant and
    the officer, and ``vsgw evidence verify`` finds any changed byte."""
    gw = await make_gateway(identity=FAST_ARGON2)
    rows = await _recorded(gw)
    officer, grant = await approved_retrieval(gw, ["cam-e"], rows[0].start, rows[-1].end)
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession(headers=bearer(officer)) as http:
        job = await _export(http, base, "cam-e", rows[0].start + timedelta(seconds=1), rows[-1].end, grant_id=grant)
        assert job["status"] == "done" and job["progress"] == 1.0, job
        video, manifest_path = await _download(http, base, job, tmp_path)
        async with http.get(f"{base}/api/recordings/evidence-key") as r:
            (tmp_path / "gw.pem").write_bytes(await r.read())
    manifest = json.loads(manifest_path.read_text())
    assert manifest["camera"] == "cam-e" and manifest["grant_id"] == grant
    assert manifest["reason"] == "traffic accident 2026-0417" and manifest["requested_by"] == "user:li"
    assert [s["sha256"] for s in manifest["segments"]] == [r.hash for r in rows]
    assert [s["prev_sha256"] for s in manifest["segments"][1:]] == [r.hash for r in rows[:-1]]
    with av.open(str(video)) as container:  # a playable MP4 holding the range from the keyframe before start
        frames = sum(1 for _ in container.decode(video=0))
    assert 100 <= frames <= 150 and frames == manifest["export"]["frames"]
    assert vsgw(["evidence", "verify", str(video), "--key", str(tmp_path / "gw.pem")]) == 0
    assert "OK:" in capsys.readouterr().out
    (exported,) = await trail(gw, action="recording.export")
    assert exported.actor == "user:li" and exported.extra["grant_id"] == grant and exported.request_id == job["id"]
    asked = await trail(gw, actor="user:li", action="export")  # the request, then the two downloads
    assert [(r.decision, r.extra["egress"], r.extra["grant"]) for r in asked] == [("allow", "export", grant)] * 3

    original = video.read_bytes()
    for offset in (0, len(original) // 2, len(original) - 1):
        _flip(video, offset)
        assert vsgw(["evidence", "verify", str(manifest_path)]) == 1
        assert "file was changed" in capsys.readouterr().err
        video.write_bytes(original)
    assert vsgw(["evidence", "verify", str(manifest_path)]) == 0
    text = manifest_path.read_bytes()
    _flip(manifest_path, text.index(b"traffic"))  # one bit of the reason
    assert vsgw(["evidence", "verify", str(manifest_path)]) == 1
    assert "signature does not match" in capsys.readouterr().err
    manifest_path.write_bytes(text)
    other = tmp_path / "other.pem"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.recording.manifest import public_pem

    other.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    assert vsgw(["evidence", "verify", str(manifest_path), "--key", str(other)]) == 1
    assert "not by the trusted key" in capsys.readouterr().err


async def test_r10_export_of_an_altered_segment_fails(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway()
    rows = await _recorded(gw, segments=2)
    part = gw.app[PART]
    _flip(part.root / rows[1].path, 4000)
    async with aiohttp.ClientSession(headers=auth()) as http:
        job = await _export(http, f"http://127.0.0.1:{gw.http_port}", "cam-e", rows[0].start, rows[-1].end)
    assert job["status"] == "failed" and "no longer matches its recorded SHA-256" in job["error"]


async def test_r10_export_refused_by_the_policy_gate(make_gateway) -> None:  # noqa: ANN001
    """A police officer may view footage but copies it only under an approved retrieval request."""
    gw = await make_gateway(identity=FAST_ARGON2)
    rows = await _recorded(gw, segments=1)
    officer = await person(gw, "li", "police_officer", clearance=5, tier="police")
    body = {"start": rows[0].start.isoformat(), "end": rows[0].end.isoformat(), "reason": "curiosity"}
    async with aiohttp.ClientSession(headers=bearer(officer)) as http:
        async with http.post(f"http://127.0.0.1:{gw.http_port}/api/recordings/cam-e/export", json=body) as r:
            assert r.status == 403 and "R11" in (await r.json())["message"]
        async with http.post(f"http://127.0.0.1:{gw.http_port}/api/recordings/cam-e/export",
                             json={**body, "reason": ""}) as r:
            assert r.status == 400
        async with http.post(f"http://127.0.0.1:{gw.http_port}/api/recordings/cam-e/export", data=b"{not json",
                             headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_json"
    assert gw.metrics.value("vsgw_recording_rejected_total", reason="forbidden") == 1
    assert gw.metrics.value("vsgw_http_rejected_total", status="400") == 2  # every refusal is counted
    (denied,) = await trail(gw, action="export")
    assert (denied.actor, denied.resource, denied.decision) == ("user:li", "camera:cam-e", "deny")
    assert denied.extra["start"] == rows[0].start.isoformat() and "R11" in denied.reason
    assert not await trail(gw, action="recording.export")


async def test_r10_evidence_lock_and_unlock_go_to_the_audit_trail(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(storage={"url": db_url}, http={"tokens": [TOKEN, SECOND_TOKEN]})
    base = f"http://127.0.0.1:{gw.http_port}/api/recordings"
    start = datetime.now(UTC) - timedelta(days=2)
    async with aiohttp.ClientSession(headers=auth()) as http:
        async with http.post(f"{base}/cam-l/locks", json={"start": start.isoformat(), "end": datetime.now(UTC).isoformat(),
                                                          "reason": "case 88", "case_id": "88"}) as r:
            lock = await r.json()
            assert r.status == 201 and lock["active"] and lock["release"] is None
        async with http.post(f"{base}/cam-l/locks", json={"start": start.isoformat(), "end": "soon",
                                                          "reason": "x"}) as r:
            assert r.status == 400 and (await r.json())["field"] == "end"
        async with http.post(f"{base}/locks/{lock['id']}/release", json={"reason": "case closed"}) as r:
            assert r.status == 202 and (await r.json())["active"]
        async with http.get(f"{base}/locks", params={"camera": "cam-l"}) as r:
            assert [lk["released_at"] is not None for lk in (await r.json())["locks"]] == [False]
        async with http.post(f"{base}/locks/{lock['id']}/release/confirm", headers=SECOND) as r:
            released = await r.json()
            assert r.status == 200 and not released["active"], released
        async with http.get(f"{base}/locks", params={"camera": "cam-l"}) as r:
            assert [lk["released_at"] is not None for lk in (await r.json())["locks"]] == [True]
    assert await _recording_rows(gw) == [("recording.lock", "allow"), ("recording.unlock.request", "allow"),
                                         ("recording.unlock", "allow")]
    (locked,), (asked,), (released,) = [await trail(gw, action=a) for a in
                                        ("recording.lock", "recording.unlock.request", "recording.unlock")]
    assert locked.request_id == lock["id"] and locked.reason == "case 88" and locked.resource == "recording:cam-l"
    assert released.reason == "case closed" and released.actor != asked.actor
    gated = await trail(gw, action="manage", resource="recording:cam-l")  # each step asked the gate first
    assert [(r.actor, r.decision, r.extra["operation"]) for r in gated] == [
        (locked.actor, "allow", "recording.lock"), (asked.actor, "allow", "recording.unlock.request"),
        (released.actor, "allow", "recording.unlock")]


async def test_r10_evidence_lock_release_needs_a_reason_and_a_second_person(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(storage={"url": db_url}, http={"tokens": [TOKEN, SECOND_TOKEN]}, identity=FAST_ARGON2)
    watcher = await person(gw, "watcher", "wall_operator", clearance=5)
    base = f"http://127.0.0.1:{gw.http_port}/api/recordings"
    span = {"start": (datetime.now(UTC) - timedelta(days=1)).isoformat(), "end": datetime.now(UTC).isoformat()}
    async with aiohttp.ClientSession(headers=auth()) as http:
        async def step(path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
            async with http.post(f"{base}/locks/{lock['id']}/{path}", json=body or {}, headers=headers) as r:
                return r.status, await r.json()

        async with http.post(f"{base}/cam-l/locks", json={**span, "reason": "case 91"}) as r:
            lock = await r.json()
        for body in ({}, {"reason": "   "}, {"reason": 7}, {"reason": "x" * 501}, {"reason": "line\nbreak"}):
            status, err = await step("release", body)
            assert status == 400 and err["field"] == "reason", (body, err)
        status, err = await step("release/confirm", headers=SECOND)
        assert status == 409 and "no release request" in err["message"]
        assert (await step("release", {"reason": "case 91 closed by court ruling"}))[0] == 202
        status, err = await step("release", {"reason": "again"}, headers=SECOND)
        assert status == 409 and "awaiting a second person" in err["message"]
        status, err = await step("release/confirm")  # the requester confirming their own request
        assert status == 403 and "two-person rule" in err["message"]
        status, err = await step("release/confirm", headers=bearer(watcher))  # no MANAGE role
        assert status == 403 and "may not manage" in err["message"]
        async with http.get(f"{base}/locks", params={"camera": "cam-l"}) as r:
            (pending,) = (await r.json())["locks"]
        assert pending["active"] and pending["release"]["reason"] == "case 91 closed by court ruling"
        status, done = await step("release/confirm", headers=SECOND)
        assert status == 200 and not done["active"]
        assert done["release"]["requested_by"] == lock["created_by"] != done["released_by"]
        assert done["release"]["confirmed_by"] == done["released_by"]
        assert (await step("release/confirm", headers=SECOND))[0] == 409
    assert await _recording_rows(gw) == [("recording.lock", "allow"), ("recording.unlock.request", "allow"),
                                         ("recording.unlock", "deny"), ("recording.unlock", "allow")]
    assert "two-person rule" in (await trail(gw, action="recording.unlock", decision="deny"))[0].reason
    (refused,) = await trail(gw, actor="user:watcher")
    assert (refused.action, refused.resource, refused.decision) == ("manage", "recording:cam-l", "deny")
    assert refused.extra["operation"] == "recording.unlock" and "may not manage" in refused.reason
    assert gw.metrics.value("vsgw_recording_rejected_total", reason="bad_request") == 5
    assert gw.metrics.value("vsgw_recording_rejected_total", reason="forbidden") == 2


async def test_r10_chain_check_finds_an_altered_and_a_hidden_segment(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(storage={"url": db_url})
    rows = await _recorded(gw, "cam-c", segments=3)
    part = gw.app[PART]
    url = f"http://127.0.0.1:{gw.http_port}/api/recordings/cam-c/verify"
    q = {"start": (rows[0].start - timedelta(seconds=1)).isoformat(), "end": datetime.now(UTC).isoformat()}
    async with aiohttp.ClientSession(headers=auth()) as http:
        async with http.get(url, params=q) as r:
            report = await r.json()
            assert report["ok"] and report["files_checked"] == 3
        _flip(part.root / rows[1].path, 1000)
        async with http.get(url, params=q) as r:
            report = await r.json()
            assert not report["ok"] and [p["problem"] for p in report["problems"]] == ["altered"]
        from gateway.recording.index import SegmentRow

        async with gw.db.session() as s:  # someone hides the middle segment by removing its index row
            await s.delete(await s.get(SegmentRow, rows[1].id))
        async with http.get(url, params=q) as r:
            report = await r.json()
    assert not report["ok"] and [p["problem"] for p in report["problems"]] == ["chain"], report
    assert gw.metrics.value("vsgw_recording_integrity_failures_total") == 2


async def test_r10_cli_export_shows_progress_downloads_and_verifies(make_gateway, tmp_path) -> None:  # noqa: ANN001
    gw = await make_gateway()
    rows = await _recorded(gw, segments=2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "evidence", "export", "cam-e", "--start", rows[0].start.isoformat(),
        "--end", rows[-1].end.isoformat(), "--reason", "court order 17", "--url", f"http://127.0.0.1:{gw.http_port}",
        "--out", str(tmp_path / "out"), env={**os.environ, "VSGW_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "100.0%" in err.decode() and out.decode().startswith("OK:")
    assert len(list((tmp_path / "out").glob("*.mp4"))) == 1 and len(list((tmp_path / "out").glob("*.json"))) == 1
