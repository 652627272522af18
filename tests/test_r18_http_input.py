"""R18 (MLPS level 3): hostile input is a clear, counted 400 and the gateway keeps serving: deeply
nested or non-object JSON, out-of-range numbers, NUL bytes and broken percent-escapes in the target,
a Host with an impossible port. An unexpected failure is a 500 that names a request id and nothing of the internals."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, strategies as st
import pytest

from gateway.http import public
from gateway.http.body import MAX_DEPTH, too_deep
from gateway.http.server import create_app
from gateway.metrics import Metrics


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k[": value}
    return value


@given(st.integers(min_value=0, max_value=3 * MAX_DEPTH), st.text(alphabet='[]{}"\\ab', max_size=8))
def test_r18_nesting_depth_is_measured_exactly_whatever_the_strings_hold(depth: int, leaf: str) -> None:
    assert too_deep(json.dumps(nested(depth, leaf))) == (depth > MAX_DEPTH)


async def raw_status(port: int, target: bytes, host: bytes = b"127.0.0.1") -> tuple[bytes, dict]:
    """GET an exact byte target (no client normalisation); the status line and JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        head, _, body = (await asyncio.wait_for(reader.read(), 10)).partition(b"\r\n\r\n")
    finally:
        writer.close()
    return head.split(b"\r\n")[0], json.loads(body)


@pytest.mark.asyncio
async def test_r18_hostile_json_is_a_counted_400_not_a_500(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway()
    base = f"http://127.0.0.1:{gw.http_port}"
    bodies = {
        "deep arrays": "[" * 5000 + "]" * 5000,
        "deep object": json.dumps(nested(MAX_DEPTH + 1)),
        "array": "[1, 2]",
        "huge integer": '{"username": 1' + "0" * 4000 + "}",
        "huge float": '{"username": 1e999999}',
        "NaN": '{"username": NaN}',
        "not UTF-8": b'{"username": "\xff"}',
    }
    async with aiohttp.ClientSession() as http:
        for name, body in bodies.items():
            async with http.post(f"{base}/api/login", data=body, headers={"Content-Type": "application/json"}) as r:
                err = await r.json()
            assert (r.status, err["error"]) == (400, "bad_json"), name
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200
    assert gw.metrics.value("vsgw_http_refused_total", error="bad_json") == len(bodies)
    assert gw.metrics.value("vsgw_http_errors_total") == 0


@pytest.mark.asyncio
async def test_r18_nul_bytes_broken_escapes_and_a_bad_host_are_a_400(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway()
    targets = [b"/admin/%00", b"/admin/index.html%00.js", b"/api/cameras/%zz", b"/catalogue%", b"/admin/%ff%fe",
               b"/api/cameras?q=%00", b"/api/cameras?q=%e4%b8"]
    for target in targets:
        status, err = await raw_status(gw.http_port, target)
        assert status.startswith(b"HTTP/1.1 400") and err["error"] == "bad_target", target
    status, err = await raw_status(gw.http_port, b"/healthz", host=b"127.0.0.1:99999")
    assert status.startswith(b"HTTP/1.1 400") and "Host" in err["message"]
    status, _ = await raw_status(gw.http_port, b"/api/cameras?q=%E4%B8%9C")  # a well-formed escape (东) is fine
    assert status.startswith(b"HTTP/1.1 401")
    assert gw.metrics.value("vsgw_http_refused_total", error="bad_target") == len(targets) + 1
    assert gw.metrics.value("vsgw_http_errors_total") == 0


@pytest.mark.asyncio
async def test_r18_an_unhandled_error_is_a_500_with_a_request_id_and_no_internals(caplog) -> None:  # noqa: ANN001
    gw = SimpleNamespace(metrics=Metrics(), authenticators=[], version="test")
    app, api = create_app(gw)  # type: ignore[arg-type]

    @public
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    api.route("GET", "/broken", broken, summary="fails", tag="test")
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.ERROR, logger="gateway.http.server"):
            r = await client.get("/broken")
            text = await r.text()
    body = json.loads(text)
    assert r.status == 500 and body["error"] == "internal" and r.headers["X-Request-Id"] == body["request_id"]
    assert "hunter2" not in text and "RuntimeError" not in text and "db.internal" not in text
    logged = [rec for rec in caplog.records if body["request_id"] in rec.getMessage()]
    assert logged and "hunter2" in logged[0].exc_text
    assert gw.metrics.value("vsgw_http_errors_total") == 1
