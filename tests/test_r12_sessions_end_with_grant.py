"""Open video ends with the grant that opened it (R11–R13): an emergency's end stops the live pulls
it allowed, with the reason; a revoked relatives' grant stops their playback mid-stream and ends
their login; every session's start and end (with duration and range) is in the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import io
import json

import aiohttp
import av
import grpc
import pytest
from sqlalchemy import select

from gateway.audit.chain import AuditRow
from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc
from tests.conftest import synthetic

from .test_policy_support import PASSWORD, parts, policy_gateway, user
from .test_recording_support import add_segment, encode, gray_pictures

pytestmark = pytest.mark.asyncio


async def _audit(gw, action: str) -> list[AuditRow]:  # noqa: ANN001
    async with gw.db.session() as s:
        return list(await s.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.seq)))


async def test_r12_emergency_end_closes_the_live_pulls_it_allowed(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await policy_gateway(make_gateway, db_url, cameras=[synthetic("cam-a")],
                              grpc={"enabled": True, "plaintext": True, "port": 0})
    _, flows, _ = parts(gw)
    commander = await user(gw, "chen", "emergency_commander", clearance=3, tier="emergency")
    await gw.identity.add_user("agent", PASSWORD, ["emergency_agency_user"], clearance=3, tier="emergency")
    token, _, _ = await gw.identity.login("agent", PASSWORD, None, "127.0.0.1")
    em = await flows.declare(commander, {"kind": "accident", "justification": "pile-up on the ring road",
                                         "cameras": ["cam-a"], "hours": 1})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.grpc.port}") as ch:
        call = rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-a"),
                                                  metadata=[("authorization", f"Bearer {token}")])
        assert (await call.read()).info.codec == "h264"
        assert (await call.read()).unit.data
        await flows.end(em.id, "the road is clear", commander)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while True:
                await call.read()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"emergency {em.id} ended: the road is clear" in err.value.details()
    assert not gw.sessions.open
    (start,), (end,) = await _audit(gw, "session.start"), await _audit(gw, "session.end")
    assert start.actor == end.actor == "user:agent" and end.extra["grant"] == em.id and end.extra["seconds"] >= 0
    assert "ended" in end.reason
    ended = [r for r in await _audit(gw, "emergency.end")]
    assert ended[-1].extra["video_sessions"] == 1


async def test_r13_revoked_grant_stops_playback_and_ends_the_relatives_login(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await policy_gateway(make_gateway, db_url, recording={"fsync": False})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    await add_segment(gw, "cam-a", t0, encode(gray_pictures(100), fps=25, gop=10))
    _, flows, _ = parts(gw)
    officer = await user(gw, "li", "police_officer", clearance=3, tier="police")
    await gw.identity.add_user("zhao", PASSWORD, ["police_officer"], clearance=3, tier="police")
    window = {"start": (t0 + timedelta(seconds=0.5)).isoformat(), "end": (t0 + timedelta(seconds=3.5)).isoformat()}
    row, token = await flows.grant_relative(officer, {"relative_name": "王先生", "missing_person": "child",
                                                      "case_number": "WX-2026-311", "cameras": ["cam-a"],
                                                      **window, "hours": 1})
    relative = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async def login(name: str) -> dict[str, str]:
            async with http.post(f"{base}/api/login", json={"username": name, "password": PASSWORD}) as r:
                return {"Authorization": f"Bearer {(await r.json())['token']}"}

        li, zhao = await login("li"), await login("zhao")
        revoke = f"{base}/api/grants/{row.id}/revoke"
        async with http.post(revoke, json={"reason": "found"}, headers=zhao) as r:
            assert r.status == 403  # neither a chief nor the officer who granted it
        async with http.post(revoke, json={"reason": ""}, headers=li) as r:
            assert r.status == 400 and (await r.json())["field"] == "reason"
        async with http.get(f"{base}/api/recordings/cam-a/play", params={**window, "speed": "1"},
                            headers=relative) as stream:
            assert stream.status == 200
            head = await stream.content.readany()
            async with http.post(revoke, json={"reason": "the child was found"}, headers=li) as r:
                assert r.status == 200 and (await r.json())["video_sessions_closed"] == 1
            blob = head + await stream.read()
        async with http.get(f"{base}/api/me", headers=relative) as r:
            assert r.status == 401
        async with http.post(revoke, json={"reason": "again"}, headers=li) as r:
            assert r.status == 409
    with av.open(io.BytesIO(blob)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 0 < frames < 75  # three seconds at 25 fps were asked; the revocation cut it short
    (end,) = await _audit(gw, "session.end")
    assert end.actor == f"relative:{row.id}" and "revoked: the child was found" in end.reason
    assert end.extra["start"] == datetime.fromisoformat(window["start"]).isoformat()
    assert end.extra["end"] < datetime.fromisoformat(window["end"]).isoformat()  # the range actually read
    (revoked,) = [r for r in await _audit(gw, "grant.revoke") if r.decision == "allow"]
    assert revoked.actor == "user:li" and json.loads(json.dumps(revoked.extra))["logins"] == 1
