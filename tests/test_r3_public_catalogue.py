"""R3 (WX 21): the catalogue of systems that must connect, public (no login) as a page (zh-CN/en),
JSON and CSV, with each system's connection status, a version and a publication date."""

from __future__ import annotations

import csv
import io

import aiohttp

from .conftest import synthetic
from .test_catalog_support import Client, camera, seed


async def test_r3_catalogue_published_to_anonymous_users_with_status_and_version(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, cameras=[synthetic("ch-a")])
    async with aiohttp.ClientSession() as s:
        admin, anon = Client(gw, s), Client(gw, s, token=None)
        await seed(admin)
        await admin.ok("POST", "/api/catalog/sites", {"id": "s-school", "name": "No. 1 Middle School", "category": "school",
                                                      "district": "Binhu", "unit_id": "u-transport"})
        await admin.ok("POST", "/api/catalog/sites", {"id": "s-market", "name": "East Market", "category": "market",
                                                      "district": "Binhu", "unit_id": "u-transport"})
        await admin.ok("POST", "/api/catalog/systems", {"id": "sys-market", "name": "Market CCTV", "unit_id": "u-transport",
                                                        "site_id": "s-market", "funding": "non_government",
                                                        "security_level": 1, "status": "built"})
        await admin.ok("POST", "/api/catalog/systems", {"id": "sys-old", "name": "Old Depot", "unit_id": "u-transport",
                                                        "funding": "government", "security_level": 1, "status": "filed",
                                                        "accepted_on": "2023-01-05"})
        await admin.ok("POST", "/api/catalog/systems/sys-old/decommission",
                       {"notice_on": "2024-01-01", "dismantled_on": "2024-01-20"})
        assert (await anon.call("GET", "/api/catalog/systems"))[0] == 401  # the admin API is not public

        status, first = await anon.call("GET", "/catalogue.json")
        assert status == 200 and first["version"] >= 1 and first["published_at"]
        by_id = {(r["site_id"], r["system_id"]): r["status"] for r in first["systems"]}
        assert by_id == {("s-station", "sys-station"): "built_not_connected", ("s-school", ""): "not_built",
                         ("s-market", "sys-market"): "built_not_connected", ("", "sys-old"): "decommissioned"}

        await admin.ok("POST", "/api/catalog/cameras", camera("c-1"))
        await admin.ok("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": "ch-a"})
        status, second = await anon.call("GET", "/catalogue.json")
        assert second["version"] == first["version"] + 1 and second["published_at"] >= first["published_at"]
        assert {r["system_id"]: r["status"] for r in second["systems"]}["sys-station"] == "connected"
        assert (await anon.call("GET", "/catalogue.json"))[1]["version"] == second["version"]  # unchanged, same version

        status, page = await anon.call("GET", "/catalogue")
        assert status == 200 and "Railway Station Square" in page and "已接入" in page and "未建设" in page
        assert f"版本 {second['version']}" in page
        status, page_en = await anon.call("GET", "/catalogue?lang=en")
        assert "Connected" in page_en and "Not built" in page_en and 'lang="en"' in page_en

        status, text = await anon.call("GET", "/catalogue.csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert status == 200 and len(rows) == 4
        assert {r["catalogue_version"] for r in rows} == {str(second["version"])}
        assert {r["system_id"]: r["status"] for r in rows}["sys-market"] == "built_not_connected"

        assert (await anon.call("GET", "/catalog/admin"))[0] == 401  # the admin page is not
        page = await admin.ok("GET", "/catalog/admin")
        assert "视频图像信息系统登记管理" in page and "sys-market" in page
        assert "Bulk import (CSV)" in await admin.ok("GET", "/catalog/admin?lang=en")

        doc = (await admin.ok("GET", "/api/openapi.json"))["paths"]
        assert doc["/catalogue"]["get"]["security"] == [] and doc["/catalogue.csv"]["get"]["security"] == []
        assert "/api/catalog/cameras/{id}" in doc and "/api/catalog/import" in doc
