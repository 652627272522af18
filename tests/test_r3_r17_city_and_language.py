"""R3, R17: the public catalogue and the compliance report speak the configured city's regulation
(``[catalog] city``) in Simplified Chinese or English, with finding details in both languages and
dates and times in ``[node] time_zone``."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from catalog.legal import REGULATIONS

from .conftest import synthetic
from .test_catalog_support import Client, camera, seed
from .test_zh_simplified import traditional

ZONE = "Pacific/Kiritimati"  # UTC+14: the local date differs from UTC's for ten hours of each day


def sqlite(tmp_path) -> dict[str, str]:  # noqa: ANN001
    return {"url": f"sqlite+aiosqlite:///{tmp_path / 'vsgw.db'}"}


@pytest.mark.parametrize("city,other", [("wuxi", "qingdao"), ("qingdao", "wuxi")])
async def test_r3_catalogue_legal_basis_follows_the_configured_city(tmp_path, make_gateway, city: str,
                                                                    other: str) -> None:
    gw = await make_gateway(storage=sqlite(tmp_path), node={"time_zone": ZONE},
                            catalog={"city": city, "publisher": "市公安局"})
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await seed(c)
        anon = c.as_(None)
        status, page = await anon.call("GET", "/catalogue")
        _, page_en = await anon.call("GET", "/catalogue?lang=en")
        _, pub = await anon.call("GET", "/catalogue.json")
    reg, wrong = REGULATIONS[city], REGULATIONS[other]
    assert status == 200 and reg.basis_zh in page and wrong.title_zh[:6] not in page
    assert reg.basis_en in page_en and wrong.basis_en not in page_en
    assert traditional(page) == [] and "应当接入联网共享平台" in page and "交通枢纽" in page
    local_day = datetime.fromisoformat(pub["published_at"]).astimezone(ZoneInfo(ZONE)).date().isoformat()
    assert f"发布日期 {local_day}" in page and f"Published {local_day}" in page_en
    assert "发布单位 市公安局" in page


async def test_r17_report_cites_qingdao_in_simplified_with_details_in_both_languages_and_local_times(
        tmp_path, make_gateway) -> None:
    gw = await make_gateway(storage=sqlite(tmp_path), node={"time_zone": ZONE}, cameras=[synthetic("ch-a")],
                            catalog={"city": "qingdao", "offline_threshold_s": 0})
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await seed(c)
        await c.ok("POST", "/api/catalog/sites", {"id": "s-school", "name": "School", "category": "school",
                                                  "district": "Shinan", "unit_id": "u-transport"})
        await c.ok("POST", "/api/catalog/cameras", camera("c-1"))
        await c.ok("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": "ch-a"})
        await c.ok("POST", "/api/catalog/systems", {"id": "sys-depot", "name": "Depot", "unit_id": "u-transport",
                                                    "funding": "government", "security_level": 1, "status": "built"})
        gw.registry.state("ch-a", False, "test: unplugged")  # offline past a zero threshold at once
        found = {f["kind"]: f for f in (await c.ok("GET", "/api/catalog/compliance"))["findings"]}
        html = await c.ok("GET", "/catalog/compliance.html")
        html_en = await c.ok("GET", "/catalog/compliance.html?lang=en")
        csv_text = await c.ok("GET", "/api/catalog/compliance.csv")

    site, unconnected, offline = found["mandatory_site_without_system"], found["built_not_connected"], found["camera_offline"]
    assert site["detail_zh"] == "场所类别：教育、科研单位" and site["detail"] == "site category Schools and research institutions (school)"
    assert "已建成" in unconnected["detail_zh"] and unconnected["detail"] == "status built"
    assert offline["detail"].endswith("+14:00") and "+14:00 起离线" in offline["detail_zh"]
    assert all(traditional(f["title_zh"] + f["detail_zh"]) == [] for f in found.values())
    assert "detail_zh" in csv_text.splitlines()[0]

    assert REGULATIONS["qingdao"].title_zh in html and "无锡" not in html and traditional(html) == []
    assert "第十三条（QD 13）" in html and "第七条（QD 7）" in html and "第二十六条（QD 26）" in html
    assert site["detail_zh"] in html and site["detail"] not in html
    assert escape(REGULATIONS["qingdao"].title_en) in html_en and site["detail"] in html_en and "教育" not in html_en
    assert "合规检查报告（青岛市）" in html and "Compliance report (Qingdao)" in html_en
    assert "+14:00" in html.split("生成时间")[1][:40]
