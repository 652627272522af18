"""The admin pages in real headless Chromium (R11, R13): an officer logs in through the form (HttpOnly
cookie session), files a retrieval request with an uploaded approval letter, and grants a relative
view-only access; both land in the database through the same API the tests above exercise."""

from __future__ import annotations

from playwright.async_api import async_playwright
import pytest
from sqlalchemy import select

from gateway.policy.grants import RetrievalRow

from .test_policy_support import PASSWORD, parts, policy_gateway

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]


async def test_r11_admin_page_files_request_and_grants_relative_in_chromium(tmp_path, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, f"sqlite+aiosqlite:///{tmp_path / 'vsgw.db'}")
    identity, _, gate = parts(gw)
    await identity.add_user("li", PASSWORD, ["police_officer"], clearance=3, tier="police")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(locale="en-US")
            await page.goto(f"http://127.0.0.1:{gw.http_port}/admin/")
            await page.fill("#login [name=username]", "li")
            await page.fill("#login [name=password]", PASSWORD)
            await page.click("#login button")
            await page.wait_for_selector("#app:not([hidden])")
            assert "li (Police officer)" in await page.text_content("#who")
            form = "#new-retrieval"
            await page.fill(f"{form} [name=legal_basis]", "Criminal Procedure Law art. 54")
            await page.fill(f"{form} [name=case_number]", "QD-2026-0099")
            await page.set_input_files(f"{form} [name=document]", files=[
                {"name": "letter.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 approval"}])
            await page.fill(f"{form} [name=cameras]", "cam-a, cam-b")
            await page.fill(f"{form} [name=start]", "2026-11-20T08:00")
            await page.fill(f"{form} [name=end]", "2026-11-20T09:00")
            await page.click(f"{form} button")
            await page.wait_for_selector("#retrieval-list td:text('Awaiting second officer')")
            await page.click("nav [data-tab=relatives]")
            rel = "#relative"
            await page.fill(f"{rel} [name=relative_name]", "Zhang Min")
            await page.fill(f"{rel} [name=case_number]", "WX-2026-7")
            await page.fill(f"{rel} [name=cameras]", "cam-c")
            await page.fill(f"{rel} [name=start]", "2026-11-20T08:00")
            await page.fill(f"{rel} [name=end]", "2026-11-20T09:00")
            await page.click(f"{rel} button")
            await page.wait_for_selector("#relative-link:has-text('/wall/?token=')")
            cookies = await page.context.cookies()
        finally:
            await browser.close()
    session = next(c for c in cookies if c["name"] == "vsgw_token")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    async with gw.db.session() as s:
        rows = list(await s.scalars(select(RetrievalRow)))
    assert [(r.case_number, r.cameras, r.requester) for r in rows] == [("QD-2026-0099", ["cam-a", "cam-b"], "user:li")]
    relative_grants = [g for g in gate.grants.values() if g.kind == "relative"]
    assert len(relative_grants) == 1 and relative_grants[0].cameras == {"cam-c"}

