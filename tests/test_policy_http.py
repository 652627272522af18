"""The R11 workflow end to end over HTTP with logged-in users, the admin pages being served, and the
event stream filtered by the gate (R2)."""

from __future__ import annotations

import json

import aiohttp
import pyotp
import pytest
from yarl import URL

from gateway.bus import ChannelState, StreamState

from .test_policy_support import PASSWORD, parts, policy_gateway, request_body

pytestmark = pytest.mark.asyncio


async def test_r11_retrieval_over_http_two_officers_and_chief(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    await identity.add_user("li", PASSWORD, ["police_officer"], clearance=3, tier="police")
    await identity.add_user("zhao", PASSWORD, ["police_officer"], clearance=3, tier="police")
    chief_secret = await identity.add_user("wang", PASSWORD, ["police_chief"], clearance=5, tier="police")
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async def login(name: str, totp: str | None = None) -> dict[str, str]:
            async with http.post(f"{base}/api/login", json={"username": name, "password": PASSWORD, "totp": totp}) as r:
                assert r.status == 200
                return {"Authorization": f"Bearer {(await r.json())['token']}"}

        async def call(method: str, path: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict]:
            async with http.request(method, f"{base}{path}", json=body, headers=headers) as r:
                return r.status, await r.json()

        li, zhao, wang = await login("li"), await login("zhao"), await login("wang", pyotp.TOTP(chief_secret).now())
        status, err = await call("POST", "/api/retrievals", li, {**request_body(["cam-a"]), "case_number": ""})
        assert status == 400 and err["field"] == "case_number"
        status, req = await call("POST", "/api/retrievals", li, request_body(["cam-a"]))
        assert status == 201 and req["status"] == "awaiting_second_officer" and len(req["document_sha256"]) == 64
        status, err = await call("POST", f"/api/retrievals/{req['id']}/confirm", li, {})
        assert status == 409 and "two distinct officers" in err["message"]
        status, _ = await call("POST", f"/api/retrievals/{req['id']}/confirm", zhao, {})
        assert status == 200
        status, err = await call("POST", f"/api/retrievals/{req['id']}/approve", zhao, {})
        assert status == 403 and "police chief" in err["message"]
        status, done = await call("POST", f"/api/retrievals/{req['id']}/approve", wang, {"hours": 2})
        assert status == 200 and done["status"] == "approved" and done["grant_id"]
        status, listed = await call("GET", "/api/retrievals", wang)
        assert [r["id"] for r in listed["requests"]] == [req["id"]]
        async with http.get(f"{base}/admin/") as page:
            html = await page.text()
        assert page.status == 200 and 'src="admin.js"' in html
        async with http.get(URL(f"{base}/admin/..%2F..%2Fapp.py", encoded=True)) as escape:
            assert escape.status == 404


async def test_r2_event_stream_never_mentions_a_camera_the_caller_may_not_list(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    await identity.add_user("op", PASSWORD, ["wall_operator"], clearance=2)
    token, _, _ = await identity.login("op", PASSWORD, None, "127.0.0.1")
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/events?topics=channel.,stream.",
                            headers={"Authorization": f"Bearer {token}"}) as r:
            await r.content.readline()  # ": connected": subscribed before the headers were sent
            gw.bus.publish(ChannelState(channel_id="cam-secret", online=False, reason="level 4 site"))
            gw.bus.publish(StreamState(key="cam-secret#1", running=True))  # a sub-stream names it too
            gw.bus.publish(ChannelState(channel_id="cam-a", online=False, reason="cable cut"))
            async for line in r.content:
                if line.startswith(b"data: "):
                    first = json.loads(line[6:])
                    break
    assert first["channel_id"] == "cam-a"  # both level-4 camera events were withheld, not just late
