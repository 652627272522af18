"""R17 (WX 32, WX 34–38, QD 26–31): a compliance report per unit/system listing every planted
violation with the article it breaks and the penalty article, as JSON, CSV and printable HTML."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, date, datetime, timedelta
import io

import aiohttp

from catalog.models import CameraRow

from .conftest import synthetic
from .test_catalog_support import Client, camera, seed

EXPECTED = {  # kind -> (breaks, penalty) under the Wuxi rules
    "mandatory_site_without_system": ("WX 8", "WX 34(1)"),
    "built_not_connected": ("WX 21", "WX 34(2)"),
    "filing_overdue": ("WX 15", "WX 36"),
    "prohibited_site_camera": ("WX 9", "WX 35"),
    "missing_signage": ("WX 14", ""),
    "decommission_notice_late": ("WX 17", "WX 37"),
    "camera_offline": ("WX 30(6)", ""),
}


async def test_r17_report_lists_planted_violations_with_articles(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, catalog={"city": "wuxi", "offline_threshold_s": 0.3},
                            cameras=[synthetic("ch-a")])
    old = (date.today() - timedelta(days=120)).isoformat()
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await seed(c)
        await c.ok("POST", "/api/catalog/units", {"id": "u-other", "name": "Housing", "type": "department", "district": "Binhu"})
        await c.ok("POST", "/api/catalog/sites", {"id": "s-school", "name": "School", "category": "school",
                                                  "district": "Liangxi", "unit_id": "u-transport"})
        await c.ok("POST", "/api/catalog/systems", {"id": "sys-late", "name": "Depot", "unit_id": "u-transport",
                                                    "funding": "government", "security_level": 1, "status": "connected",
                                                    "accepted_on": old})
        await c.ok("POST", "/api/catalog/systems", {"id": "sys-gone", "name": "Gone", "unit_id": "u-transport",
                                                    "funding": "government", "security_level": 1, "status": "filed",
                                                    "accepted_on": "2022-01-01"})
        await c.ok("POST", "/api/catalog/systems/sys-gone/filing", {"filed_on": "2022-01-10"})
        await c.ok("POST", "/api/catalog/systems/sys-gone/decommission", {"notice_on": days(-1), "dismantled_on": days(-3)})
        await c.ok("POST", "/api/catalog/cameras", camera("c-nosign", system="sys-late", signage=False))
        await c.ok("POST", "/api/catalog/cameras", camera("c-live", system="sys-late"))
        await c.ok("PUT", "/api/catalog/cameras/c-live/binding", {"channel_id": "ch-a"})
        async with gw.db.session() as session:  # a legacy record from before the rules (QD 35): the API refuses these
            t = datetime.now(UTC)
            session.add(CameraRow(id="c-legacy-wc", name="legacy", system_id="sys-late", site_category="toilet",
                                  installation_location="x", address_code="1", device_type="y", signage=True,
                                  privacy_masks=[], status="active", created_at=t, updated_at=t))
        gw.registry.state("ch-a", False, "test: camera unplugged")

        async def report() -> list[dict]:
            return (await c.ok("GET", "/api/catalog/compliance"))["findings"]

        deadline = asyncio.get_running_loop().time() + 10
        while not any(f["kind"] == "camera_offline" for f in await report()):
            assert asyncio.get_running_loop().time() < deadline, "offline camera never reported"
            await asyncio.sleep(0.1)
        found = await report()
        assert {f["kind"] for f in found} == set(EXPECTED)
        for f in found:
            assert (f["breaks"], f["penalty"]) == EXPECTED[f["kind"]], f
        where = {f["kind"]: f["camera_id"] or f["system_id"] or f["site_id"] for f in found if f["kind"] != "missing_signage"}
        assert where == {"mandatory_site_without_system": "s-school", "built_not_connected": "sys-station",
                         "filing_overdue": "sys-late", "prohibited_site_camera": "c-legacy-wc",
                         "decommission_notice_late": "sys-gone", "camera_offline": "c-live"}
        assert [f["camera_id"] for f in found if f["kind"] == "missing_signage"] == ["c-nosign"]

        per_system = (await c.ok("GET", "/api/catalog/compliance?system_id=sys-late"))["findings"]
        assert {f["system_id"] for f in per_system} == {"sys-late"} and len(per_system) == 4
        assert (await c.ok("GET", "/api/catalog/compliance?unit_id=u-other"))["findings"] == []

        text = await c.ok("GET", "/api/catalog/compliance.csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == len(found) and {r["breaks"] for r in rows} == {b for b, _ in EXPECTED.values()}
        html = await c.ok("GET", "/catalog/compliance.html")
        assert "WX 34(2)" in html and "逾期未备案" in html and "@media print" in html
        html_en = await c.ok("GET", "/catalog/compliance.html?lang=en")
        assert "Filing overdue" in html_en and f"Findings: {len(found)}" in html_en

        gw.registry.state("ch-a", True)
        deadline = asyncio.get_running_loop().time() + 5
        while any(f["kind"] == "camera_offline" for f in await report()):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)


def days(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()
