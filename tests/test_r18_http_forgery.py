"""R18 (MLPS level 3, controlled access): a page on another port of the same host cannot make a
logged-in browser act. Unsafe requests that a session cookie authenticates need a same-origin
``Origin`` (or ``Sec-Fetch-Site: same-origin``) and the route's own body type; bearer-token and
``access_token`` callers are unaffected. Every refusal is a counted 403."""

from __future__ import annotations

from typing import Any

import aiohttp
import pyotp
import pytest

from .test_catalog_import import GOOD, HEADER
from .test_policy_support import PASSWORD, parts, policy_gateway, request_body

pytestmark = pytest.mark.asyncio


class Browser:
    """Requests as a browser sends them: the session cookie attached, plus the headers it adds."""

    def __init__(self, http: aiohttp.ClientSession, base: str, cookie: str) -> None:
        self.http, self.base, self.cookie = http, base, cookie

    async def post(self, path: str, *, origin: str | None = None, site: str | None = None,
                   json: Any = None, data: Any = None, content_type: str | None = None) -> tuple[int, Any]:
        headers = {"Cookie": f"vsgw_token={self.cookie}"}
        if origin is not None:
            headers["Origin"] = origin
        if site is not None:
            headers["Sec-Fetch-Site"] = site
        if content_type is not None:
            headers["Content-Type"] = content_type
        async with self.http.post(self.base + path, json=json, data=data, headers=headers) as r:
            return r.status, await r.json()


async def log_in(http: aiohttp.ClientSession, base: str, name: str, secret: str | None = None) -> str:
    """Log in over HTTP as the admin page does; returns the session cookie the gateway set."""
    body = {"username": name, "password": PASSWORD, "totp": pyotp.TOTP(secret).now() if secret else None}
    async with http.post(f"{base}/api/login", json=body, headers={"Origin": base}) as r:
        assert r.status == 200, await r.text()
        return r.cookies["vsgw_token"].value


async def retrieval_gateway(db_url, make_gateway):  # noqa: ANN001, ANN201
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    await identity.add_user("li", PASSWORD, ["police_officer"], clearance=3, tier="police")
    await identity.add_user("zhao", PASSWORD, ["police_officer"], clearance=3, tier="police")
    chief = await identity.add_user("wang", PASSWORD, ["police_chief"], clearance=5, tier="police")
    return gw, chief


async def test_r18_cookie_confirm_and_approve_from_another_port_are_refused(db_url, make_gateway) -> None:
    gw, chief = await retrieval_gateway(db_url, make_gateway)
    base = f"http://127.0.0.1:{gw.http_port}"
    evil = f"http://127.0.0.1:{gw.http_port + 1}"  # same host, another port: SameSite calls it same-site
    async with aiohttp.ClientSession() as http:
        li = await log_in(http, base, "li")
        zhao = Browser(http, base, await log_in(http, base, "zhao"))
        wang = Browser(http, base, await log_in(http, base, "wang", chief))
        async with http.post(f"{base}/api/retrievals", json=request_body(["cam-a"]),
                             headers={"Authorization": f"Bearer {li}"}) as r:
            rid = (await r.json())["id"]
        confirm = f"/api/retrievals/{rid}/confirm"
        for attempt in ({"origin": evil}, {"origin": "null"}, {"site": "same-site"}, {"site": "cross-site"}, {},
                        {"origin": f"https://127.0.0.1:{gw.http_port}"}):
            status, err = await zhao.post(confirm, **attempt)
            assert (status, err["error"]) == (403, "cross_origin"), attempt
        status, done = await zhao.post(confirm, origin=base, json={})
        assert status == 200 and done["status"] == "awaiting_approval"  # nothing above had confirmed it

        approve = f"/api/retrievals/{rid}/approve"
        status, err = await wang.post(approve, origin=evil, data='{"hours": 2}', content_type="text/plain")
        assert (status, err["error"]) == (403, "cross_origin")
        status, err = await wang.post(approve, origin=base, data='{"hours": 2}', content_type="text/plain")
        assert (status, err["error"]) == (403, "content_type") and "application/json" in err["message"]
        status, done = await wang.post(approve, site="same-origin", json={"hours": 2})
        assert status == 200 and done["status"] == "approved"
    assert gw.metrics.value("vsgw_http_refused_total", error="cross_origin") == 7
    assert gw.metrics.value("vsgw_http_refused_total", error="content_type") == 1


async def test_r18_bearer_and_access_token_calls_need_no_origin(db_url, make_gateway) -> None:
    gw, _ = await retrieval_gateway(db_url, make_gateway)
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        li, zhao = await log_in(http, base, "li"), await log_in(http, base, "zhao")
        async with http.post(f"{base}/api/retrievals", json=request_body(["cam-a"]),
                             headers={"Authorization": f"Bearer {li}"}) as r:
            first = (await r.json())["id"]
        async with http.post(f"{base}/api/retrievals?access_token={li}", json=request_body(["cam-b"])) as r:
            assert r.status == 201
            second = (await r.json())["id"]
        status, err = await Browser(http, base, zhao).post(f"/api/retrievals/{first}/confirm")
        assert (status, err["error"]) == (403, "cross_origin")  # the cookie alone does not do
        # a script or platform: no Origin, no Sec-Fetch-*, the stale cookie of someone else ignored
        async with http.post(f"{base}/api/retrievals/{first}/confirm",
                             json={}, headers={"Authorization": f"Bearer {zhao}", "Cookie": f"vsgw_token={li}"}) as r:
            assert r.status == 200 and (await r.json())["second_officer"] == "user:zhao"
        async with http.post(f"{base}/api/retrievals/{second}/confirm?access_token={zhao}", json={}) as r:
            assert r.status == 200
    assert gw.metrics.value("vsgw_http_refused_total", error="cross_origin") == 1


async def test_r18_login_from_a_foreign_page_is_refused(db_url, make_gateway) -> None:
    gw, _ = await retrieval_gateway(db_url, make_gateway)
    base = f"http://127.0.0.1:{gw.http_port}"
    body = {"username": "li", "password": PASSWORD}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/login", json=body, headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403 and (await r.json())["error"] == "cross_origin"
            assert "Set-Cookie" not in r.headers
        async with http.post(f"{base}/api/login", json=body) as r:  # a command-line client sends no Origin
            assert r.status == 200


async def test_r18_uploads_keep_working_from_the_pages_but_only_as_declared(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    secret = await identity.add_user("root", PASSWORD, ["system_admin"], clearance=9)
    base = f"http://127.0.0.1:{gw.http_port}"
    csv = (HEADER + "\n".join(GOOD) + "\n").encode()
    async with aiohttp.ClientSession() as http:
        root = Browser(http, base, await log_in(http, base, "root", secret))
        form = aiohttp.FormData()
        form.add_field("file", csv, filename="records.csv", content_type="text/csv")
        async with http.post(f"{base}/api/catalog/import", data=form,
                             headers={"Cookie": f"vsgw_token={root.cookie}", "Origin": base}) as r:
            assert r.status == 403 and (await r.json())["error"] == "content_type"  # multipart: not declared here
        status, err = await root.post("/api/catalog/import", origin="http://127.0.0.1:1", data=csv,
                                      content_type="text/csv")
        assert (status, err["error"]) == (403, "cross_origin")
        status, out = await root.post("/api/catalog/import", origin=base, data=csv, content_type="text/csv")
        assert status == 201 and out["imported"]["camera"] == 2
        status, doc = await root.post("/api/catalog/systems/sys-park/documents?kind=acceptance&name=a.pdf",
                                      origin=base, data=b"%PDF-1.4 acceptance", content_type="application/octet-stream")
        assert status == 201 and doc["size"] == 19
        status, err = await root.post("/api/catalog/systems/sys-park/documents?kind=acceptance&name=b.pdf",
                                      origin=base, data=b"%PDF-1.4", content_type="text/plain")
        assert (status, err["error"]) == (403, "content_type")
