"""R18 (MLPS level 3): request bodies are limited per route, so nobody can make the gateway buffer
64 MiB through the public login. A declared length over the limit is refused before the body is
sent; a chunked body is cut off at the limit; upload routes keep their larger limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from gateway.http.api import JSON_MAX_BODY, PUBLIC_MAX_BODY, UPLOAD_MAX_BODY
from tests.conftest import TOKEN, auth

from .test_catalog_import import GOOD, HEADER
from .test_catalog_support import Client

pytestmark = pytest.mark.asyncio


async def exchange_headers_only(port: int, head: bytes) -> bytes:
    """Send a request's head and none of its body; return the status line the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_r18_login_refuses_a_declared_64_mib_body_before_reading_it(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway()
    status = await exchange_headers_only(gw.http_port, (
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 67108864\r\n\r\n"))
    assert status.startswith(b"HTTP/1.1 413")  # answered while the 64 MiB were still unsent
    assert gw.metrics.value("vsgw_http_refused_total", error="body_too_large") == 1


async def chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    yield b'{"username": "'
    for _ in range(total // size):
        yield b"a" * size


async def test_r18_chunked_bodies_are_cut_off_at_the_route_limit(make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway()
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/login", data=chunks(4 * PUBLIC_MAX_BODY),
                             headers={"Content-Type": "application/json"}) as r:
            err = await r.json()
        assert r.status == 413 and err["error"] == "body_too_large" and str(PUBLIC_MAX_BODY) in err["message"]
        padding = "x" * (JSON_MAX_BODY + 1)
        async with http.post(f"{base}/api/emergencies", json={"kind": "flood", "justification": padding},
                             headers=auth()) as r:
            assert r.status == 413  # an authenticated JSON route: 1 MiB
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200  # and the gateway keeps serving


async def test_r18_upload_routes_keep_their_larger_limit(db_url, make_gateway) -> None:  # noqa: ANN001
    gw = await make_gateway(storage={"url": db_url})
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await c.ok("POST", "/api/catalog/import", data=(HEADER + "\n".join(GOOD) + "\n").encode(),
                   headers={"Content-Type": "text/csv"})
        big = b"%PDF-1.4 " + bytes(2 * JSON_MAX_BODY)
        doc = await c.ok("POST", "/api/catalog/systems/sys-park/documents?kind=acceptance&name=scan.pdf", data=big)
        assert doc["size"] == len(big)
    status = await exchange_headers_only(gw.http_port, (
        f"POST /api/catalog/systems/sys-park/documents?kind=acceptance&name=huge.pdf HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {UPLOAD_MAX_BODY + 1}\r\n\r\n").encode())
    assert status.startswith(b"HTTP/1.1 413")  # uploads too have a limit, checked before the body comes
