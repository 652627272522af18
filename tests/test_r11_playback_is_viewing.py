"""Recorded video through the real HTTP routes (R11, R13): a grant covers exactly its footage
window, viewing is paced and bounded, a copy is an export under the grant, and every read's range
is in the audit trail with the session that read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
import io

import aiohttp
import av
import pyotp
import pytest
from sqlalchemy import select

from gateway.audit.chain import AuditRow
from gateway.policy import Action, subject_access

from .test_policy_support import PASSWORD, parts, policy_gateway, request_body
from .test_recording_support import add_segment, encode, gray_pictures

pytestmark = pytest.mark.asyncio

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=90)  # four seconds recorded from here


async def _setup(make_gateway, db_url: str):  # noqa: ANN001, ANN202
    gw = await policy_gateway(make_gateway, db_url, recording={"fsync": False})
    units = encode(gray_pictures(100), fps=25, gop=10)
    for cam in ("cam-a", "cam-secret"):
        await add_segment(gw, cam, T0, units)
    identity, flows, _ = parts(gw)
    await identity.add_user("li", PASSWORD, ["police_officer"], clearance=3, tier="police")
    await identity.add_user("zhao", PASSWORD, ["police_officer"], clearance=3, tier="police")
    await identity.add_user("op", PASSWORD, ["wall_operator"], clearance=1)
    chief = await identity.add_user("wang", PASSWORD, ["police_chief"], clearance=5, tier="police")
    return gw, chief


class Http:
    def __init__(self, gw, http: aiohttp.ClientSession) -> None:  # noqa: ANN001
        self.base, self.http = f"http://127.0.0.1:{gw.http_port}", http

    async def login(self, name: str, secret: str | None = None) -> dict[str, str]:
        body = {"username": name, "password": PASSWORD, "totp": pyotp.TOTP(secret).now() if secret else None}
        async with self.http.post(f"{self.base}/api/login", json=body) as r:
            assert r.status == 200
            return {"Authorization": f"Bearer {(await r.json())['token']}"}

    async def call(self, method: str, path: str, who: dict[str, str], body: dict | None = None,
                   params: dict | None = None) -> tuple[int, bytes]:
        async with self.http.request(method, f"{self.base}{path}", json=body, params=params, headers=who) as r:
            return r.status, await r.read()


def _span(a: float, b: float) -> dict[str, str]:
    return {"start": (T0 + timedelta(seconds=a)).isoformat(), "end": (T0 + timedelta(seconds=b)).isoformat()}


async def _audit(gw, action: str, decision: str | None = None) -> list[AuditRow]:  # noqa: ANN001
    async with gw.db.session() as s:
        q = select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.seq)
        rows = list(await s.scalars(q))
    return [r for r in rows if decision is None or r.decision == decision]


async def test_r13_relative_cannot_play_outside_grant_window(db_url, make_gateway) -> None:  # noqa: ANN001
    gw, _ = await _setup(make_gateway, db_url)
    async with aiohttp.ClientSession() as session:
        http = Http(gw, session)
        li = await http.login("li")
        grant = {"relative_name": "张女士", "missing_person": "elderly", "case_number": "QD-2026-0107",
                 "cameras": ["cam-a"], **_span(1, 2), "hours": 1}
        status, body = await http.call("POST", "/api/relative-grants", li, grant)
        assert status == 201

        relative = {"Authorization": f"Bearer {json.loads(body)['token']}"}
        play = "/api/recordings/cam-a/play"
        status, inside = await http.call("GET", play, relative, params={**_span(1, 2), "speed": "4"})
        assert status == 200
        for outside in (_span(2.5, 3.5), _span(0.5, 1.5), _span(1, 2.5), {**_span(1, 2), "start": (T0 - timedelta(
                minutes=15)).isoformat()}):
            status, _ = await http.call("GET", play, relative, params={**outside, "speed": "4"})
            assert status == 403, outside
        status, _ = await http.call("GET", "/api/recordings/cam-a/ranges", relative)  # default: the last 24 hours
        assert status == 403
        status, _ = await http.call("GET", "/api/recordings/cam-a/ranges", relative, params=_span(1, 2))
        assert status == 200
    with av.open(io.BytesIO(inside)) as container:  # what a relative gets is re-encoded (watermarked) video
        frames = list(container.decode(video=0))
    assert 20 <= len(frames) <= 30
    denied = await _audit(gw, "view_playback", "deny")
    assert len(denied) >= 5 and all(r.extra.get("start") and r.extra.get("end") for r in denied)


async def test_r11_playback_is_paced_and_bounded_copy_is_export(db_url, make_gateway) -> None:  # noqa: ANN001
    gw, _ = await _setup(make_gateway, db_url)
    async with aiohttp.ClientSession() as session:
        http = Http(gw, session)
        op = await http.login("op")
        play = "/api/recordings/cam-a/play"
        for speed in ("0", "-1", "17", "inf", "nan"):
            status, body = await http.call("GET", play, op, params={**_span(0, 2), "speed": speed})
            assert status == 400 and b"speed" in body, speed
        day_and_more = {"start": (T0 - timedelta(hours=25)).isoformat(), "end": (T0 + timedelta(seconds=2)).isoformat()}
        status, body = await http.call("GET", play, op, params={**day_and_more, "speed": "16"})
        assert status == 400 and b"at most 24 hours" in body
        status, body = await http.call("GET", play, op, params={**_span(0, 2), "speed": "16", "format": "ts"})
        assert status == 200 and len(body) > 1000
    allowed = await _audit(gw, "view_playback", "allow")
    assert allowed[-1].extra["start"] == _span(0, 2)["start"].replace("Z", "+00:00")
    ends = await _audit(gw, "session.end")
    assert ends and ends[-1].extra["kind"] == "playback" and ends[-1].extra["seconds"] >= 0
    assert ends[-1].extra["start"] == allowed[-1].extra["start"]


async def test_r11_export_under_grant_is_allowed_and_audited(db_url, make_gateway) -> None:  # noqa: ANN001
    """An approved copy request for a level-4 camera lets its officers export exactly its range: the
    export is a job (202) carrying the grant, not a 500, and the attempt outside the range is refused."""
    gw, chief = await _setup(make_gateway, db_url)
    body = {**request_body(["cam-secret"]), **_span(0, 3)}
    async with aiohttp.ClientSession() as session:
        http = Http(gw, session)
        li, zhao, wang = await http.login("li"), await http.login("zhao"), await http.login("wang", chief)

        status, req = await http.call("POST", "/api/retrievals", li, body)
        rid = json.loads(req)["id"]
        assert status == 201
        assert (await http.call("POST", f"/api/retrievals/{rid}/confirm", zhao, {}))[0] == 200
        status, done = await http.call("POST", f"/api/retrievals/{rid}/approve", wang, {"hours": 1})
        grant_id = json.loads(done)["grant_id"]
        exports = "/api/recordings/cam-secret/export"
        status, job = await http.call("POST", exports, li, {**_span(0.5, 2.5), "reason": "case QD-2026-0042"})
        assert status == 202, job
        assert json.loads(job)["grant_id"] == grant_id
        status, _ = await http.call("POST", exports, li, {**_span(2, 4), "reason": "beyond the approved range"})
        assert status == 403
        status, _ = await http.call("GET", "/api/recordings/cam-secret/play", li, params={**_span(0, 3), "speed": "1"})
        assert status == 200  # the grant covers viewing its range too
    exported = await _audit(gw, "export")
    assert [r.decision for r in exported] == ["allow", "deny"]
    assert exported[0].extra["grant"] == grant_id and exported[0].extra["egress"] == "export"


async def test_r11_retrieval_grant_confers_no_live_view(db_url, make_gateway) -> None:  # noqa: ANN001
    """A grant about past footage opens that footage, not the camera's live picture."""
    gw, chief = await _setup(make_gateway, db_url)
    identity, flows, gate = parts(gw)
    li = (await identity.login("li", PASSWORD, None, "127.0.0.1"))[2]
    zhao = (await identity.login("zhao", PASSWORD, None, "127.0.0.1"))[2]
    wang = (await identity.login("wang", PASSWORD, pyotp.TOTP(chief).now(), "127.0.0.1"))[2]
    row = await flows.create_request(li, {**request_body(["cam-secret"]), **_span(0, 3)})
    await flows.confirm(zhao, row.id)
    await flows.approve(wang, row.id, {"hours": 1})
    cam = gw.camera_resource("cam-secret")
    window = (T0, T0 + timedelta(seconds=3))
    assert await gate.authorize(subject_access(li, Action.VIEW_PLAYBACK, cam, "http", window=window))
    live = await gate.authorize(subject_access(li, Action.VIEW_LIVE, cam, "whep"))
    assert not live and "clearance" in live.reason
