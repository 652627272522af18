"""The admin console (/admin/) in real headless Chromium, one user per role (R11, R12, R13, R16):
after login the login form and its password are gone; each role sees only the tabs and forms it
can use (GET /api/me); columns, statuses, purposes, emergency kinds and roles read as words in
zh-CN and English; times are shown and typed in [node] time_zone whatever the browser's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Page, async_playwright
import pyotp
import pytest
from sqlalchemy import select

from gateway.policy.grants import EmergencyRow, RetrievalRow

from .test_policy_support import PASSWORD, parts, policy_gateway, request_body, user

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
ZONE = "Asia/Shanghai"
BROWSER_ZONE = "America/Los_Angeles"  # the browser's own zone, never the one times must be shown in
TABS = {  # role -> the console tabs it sees, in order
    "police_officer": ["retrievals", "relatives"],
    "police_chief": ["approvals", "retrievals", "reviews", "relatives"],
    "emergency_commander": ["emergencies"],
    "auditor": ["retrievals", "reviews", "audit"],
    "system_admin": ["system"],
    "wall_operator": [],
}
FORMS = {"police_officer": {"#new-retrieval", "#relative"}, "police_chief": {"#relative"},
         "emergency_commander": {"#declare"}, "auditor": {"#audit-search"}, "system_admin": set(),
         "wall_operator": set()}
ALL_FORMS = {"#new-retrieval", "#relative", "#declare", "#audit-search"}


def local(when: datetime) -> str:
    """What the console must show: the node zone's wall clock (SQLite hands back naive UTC)."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")


async def log_in(page: Page, base: str, name: str, secret: str | None) -> None:
    await page.goto(f"{base}/admin/")
    await page.fill("#login [name=username]", name)
    await page.fill("#login [name=password]", PASSWORD)
    if secret:
        await page.fill("#login [name=totp]", pyotp.TOTP(secret).now())
    await page.click("#login button")
    await page.wait_for_selector("#app:not([hidden])")


async def visible_tabs(page: Page) -> list[str]:
    return await page.eval_on_selector_all("nav [data-tab]", "bs => bs.filter(b => b.offsetParent).map(b => b.dataset.tab)")


async def column(page: Page, table: str, col: str) -> list[str]:
    return await page.eval_on_selector_all(f"{table} td[data-col={col}]", "tds => tds.map(td => td.textContent)")


async def test_r11_each_role_sees_only_its_forms_and_the_login_form_is_gone(tmp_path, make_gateway) -> None:
    gw = await make_gateway(storage={"url": f"sqlite+aiosqlite:///{tmp_path / 'vsgw.db'}"}, node={"time_zone": ZONE})
    identity, _, _ = parts(gw)
    secrets = {role: await identity.add_user(role.replace("_", "-"), PASSWORD, [role], clearance=3, tier="police")
               for role in TABS}
    base = f"http://127.0.0.1:{gw.http_port}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            for role, tabs in TABS.items():
                context = await browser.new_context(locale="zh-CN", timezone_id=BROWSER_ZONE)
                page = await context.new_page()
                await log_in(page, base, role.replace("_", "-"), secrets[role])
                assert not await page.is_visible("#login"), role
                assert await page.eval_on_selector("#login [name=password]", "i => i.value") == "", role
                assert await visible_tabs(page) == tabs, role
                shown = set()
                for tab in tabs:
                    await page.click(f"nav [data-tab={tab}]")
                    shown |= {f for f in ALL_FORMS if await page.is_visible(f)}
                assert shown == FORMS[role], role
                assert await page.is_visible("#nothing") == (not tabs), role
                assert await page.is_visible("#zone") and ZONE in await page.text_content("#zone")
                await context.close()
        finally:
            await browser.close()


async def test_r11_r12_tables_speak_words_and_show_times_in_the_node_zone(tmp_path, make_gateway) -> None:
    gw = await make_gateway(storage={"url": f"sqlite+aiosqlite:///{tmp_path / 'vsgw.db'}"}, node={"time_zone": ZONE})
    identity, flows, _ = parts(gw)
    officer = await user(gw, "wang", "police_officer", clearance=3, tier="police")
    second = await user(gw, "zhao", "police_officer", clearance=3, tier="police")
    filed = await flows.create_request(officer, request_body(["cam-a"]))
    await flows.confirm(second, filed.id)
    chief = await identity.add_user("chen", PASSWORD, ["police_chief"], clearance=3, tier="police")
    commander = await identity.add_user("sun", PASSWORD, ["emergency_commander"], clearance=3, tier="police")
    await identity.add_user("li", PASSWORD, ["police_officer"], clearance=3, tier="police")
    base = f"http://127.0.0.1:{gw.http_port}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            ctx = await browser.new_context(locale="zh-CN", timezone_id=BROWSER_ZONE)
            page = await ctx.new_page()
            await log_in(page, base, "li", None)  # an officer types the range in the node's zone
            form = "#new-retrieval"
            await page.fill(f"{form} [name=legal_basis]", "刑事诉讼法第五十四条")
            await page.fill(f"{form} [name=case_number]", "QD-2026-0100")
            await page.set_input_files(f"{form} [name=document]", files=[
                {"name": "letter.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 approval"}])
            await page.fill(f"{form} [name=cameras]", "cam-b")
            await page.fill(f"{form} [name=start]", "2026-11-20T08:00")
            await page.fill(f"{form} [name=end]", "2026-11-20T09:30")
            await page.click(f"{form} button")
            await page.wait_for_selector("#retrieval-list td:text('QD-2026-0100')")
            heads = await page.eval_on_selector_all("#retrieval-list th", "ths => ths.map(th => th.textContent)")
            assert "案件编号" in heads and "第二名民警" in heads and "case_number" not in heads
            assert "待第二名民警确认" in await column(page, "#retrieval-list", "status")
            assert "司法工作" in await column(page, "#retrieval-list", "purpose")
            assert "2026-11-20 08:00:00" in await column(page, "#retrieval-list", "start")
            assert "民警" in await page.text_content("#who") and "police_officer" not in await page.text_content("#who")
            await page.click("#lang")
            await page.wait_for_selector("#retrieval-list td:text('Awaiting second officer')")
            assert "Case number" in await page.eval_on_selector_all("#retrieval-list th", "ths => ths.map(t => t.textContent)")
            assert "Judicial work" in await column(page, "#retrieval-list", "purpose")
            await page.click("#lang")
            await ctx.close()

            ctx = await browser.new_context(locale="zh-CN", timezone_id=BROWSER_ZONE)
            page = await ctx.new_page()
            await log_in(page, base, "chen", chief)  # the chief approves in the approvals tab
            await page.wait_for_selector("#approval-list td:text('待审批')")
            assert await column(page, "#approval-list", "start") == [local(filed.start)]
            await page.click("#approval-list button:text('批准')")
            await page.wait_for_selector("#approval-list td:text('（无）')")
            await page.click("nav [data-tab=retrievals]")
            await page.wait_for_selector("#retrieval-list td:text('已批准')")
            await ctx.close()

            ctx = await browser.new_context(locale="en-US", timezone_id=BROWSER_ZONE)
            page = await ctx.new_page()
            await log_in(page, base, "sun", commander)  # the commander declares in English
            await page.select_option("#declare [name=kind]", "public_order")
            await page.fill("#declare [name=justification]", "crowd at the station")
            await page.fill("#declare [name=cameras]", "cam-a")
            await page.click("#declare button")
            await page.wait_for_selector("#emergency-list td:text('Public order')")
            shown_expiry = await column(page, "#emergency-list", "expires")
            await page.click("#lang")
            await page.wait_for_selector("#emergency-list td:text('社会治安事件')")
            await ctx.close()
        finally:
            await browser.close()
    async with gw.db.session() as s:
        rows = {r.case_number: r for r in await s.scalars(select(RetrievalRow))}
        emergency = (await s.scalars(select(EmergencyRow))).one()
    typed = rows["QD-2026-0100"]
    assert (typed.start.replace(tzinfo=UTC), typed.end.replace(tzinfo=UTC)) == (
        datetime(2026, 11, 20, 0, 0, tzinfo=UTC), datetime(2026, 11, 20, 1, 30, tzinfo=UTC))
    assert rows[filed.case_number].status == "approved"
    assert shown_expiry == [local(emergency.expires)]
