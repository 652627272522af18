"""R18 in real headless Chromium: an officer is logged in to the admin page (SameSite=Strict cookie);
a page served from another port of the same host, which Chromium counts as the same site and so
sends the cookie to, tries to confirm a retrieval request as him by a ``no-cors`` fetch and by a
``text/plain`` form. Both are refused; the officer's own click on the admin page still confirms."""

from __future__ import annotations

from aiohttp import web
from playwright.async_api import async_playwright
import pytest

from gateway.policy.grants import RetrievalRow

from .test_policy_support import PASSWORD, parts, policy_gateway, request_body

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]

ATTACK = """<!doctype html><form id="f" method="POST" enctype="text/plain" action="{url}">
<input name='{{"x":"' value='"}}'></form>"""


async def stored(gw, request_id: str) -> RetrievalRow:  # noqa: ANN001
    async with gw.db.session() as s:
        return await s.get(RetrievalRow, request_id)


async def serve_attacker(target: str) -> tuple[web.AppRunner, str]:
    """The attacker's page on a free port of 127.0.0.1."""
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=ATTACK.format(url=target), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"


async def test_r18_a_page_on_another_port_cannot_confirm_as_the_logged_in_officer(tmp_path, make_gateway) -> None:  # noqa: ANN001
    gw = await policy_gateway(make_gateway, f"sqlite+aiosqlite:///{tmp_path / 'vsgw.db'}")
    identity, flows, _ = parts(gw)
    for name in ("li", "zhao"):
        await identity.add_user(name, PASSWORD, ["police_officer"], clearance=3, tier="police")
    _, _, requester = await identity.login("li", PASSWORD, None)
    row = await flows.create_request(requester, request_body(["cam-a"]))
    base = f"http://127.0.0.1:{gw.http_port}"
    confirm = f"{base}/api/retrievals/{row.id}/confirm"
    runner, evil = await serve_attacker(confirm)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            try:
                page = await browser.new_page(locale="en-US")
                await page.goto(f"{base}/admin/")
                await page.fill("#login [name=username]", "zhao")
                await page.fill("#login [name=password]", PASSWORD)
                await page.click("#login button")
                await page.wait_for_selector("#app:not([hidden])")

                await page.goto(evil)
                await page.evaluate("""url => fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                                        headers: {"Content-Type": "text/plain"}, body: "{}"})""", confirm)
                async with page.expect_navigation():
                    await page.evaluate("document.getElementById('f').submit()")
                assert '"cross_origin"' in await page.content()  # the form's POST landed on the refusal
                assert (await stored(gw, row.id)).status == "awaiting_second_officer"
                assert gw.metrics.value("vsgw_http_refused_total", error="cross_origin") == 2

                await page.goto(f"{base}/admin/")
                await page.wait_for_selector("#app:not([hidden])")
                await page.click("#retrieval-list button:text('Confirm as second officer')")
                await page.wait_for_selector("#retrieval-list td:text('Awaiting approval')")
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    confirmed = await stored(gw, row.id)
    assert confirmed.status == "awaiting_approval" and confirmed.second_officer == "user:zhao"
