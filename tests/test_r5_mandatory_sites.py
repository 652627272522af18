"""R5 (QD 7, WX 8, WX 34): mandated sites without a system, and systems built but not connected,
are compliance findings citing the article broken and the penalty article."""

from __future__ import annotations

import aiohttp

from .conftest import synthetic
from .test_catalog_support import Client, camera, seed


async def test_r5_unbuilt_and_unconnected_mandatory_sites_are_findings(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, cameras=[synthetic("ch-a")])
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await seed(c)  # station: system accepted today, not connected
        await c.ok("POST", "/api/catalog/sites", {"id": "s-hospital", "name": "City Hospital", "category": "hospital",
                                                  "district": "Liangxi", "unit_id": "u-transport"})
        cats = {x["code"]: x for x in (await c.ok("GET", "/api/catalog/site-categories"))["categories"]}
        assert cats["hospital"]["kind"] == "mandatory" and "WX 8(1)" in cats["hospital"]["articles"]

        found = (await c.ok("GET", "/api/catalog/compliance"))["findings"]
        kinds = {(f["kind"], f["system_id"] or f["site_id"]): (f["breaks"], f["penalty"]) for f in found}
        assert kinds[("mandatory_site_without_system", "s-hospital")] == ("WX 8", "WX 34(1)")
        assert kinds[("built_not_connected", "sys-station")] == ("WX 21", "WX 34(2)")
        assert ("mandatory_site_without_system", "s-station") not in kinds

        await c.ok("POST", "/api/catalog/cameras", camera("c-1"))
        await c.ok("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": "ch-a"})
        assert (await c.ok("GET", "/api/catalog/systems/sys-station"))["status"] == "connected"
        found = (await c.ok("GET", "/api/catalog/compliance"))["findings"]
        assert not [f for f in found if f["kind"] == "built_not_connected"]
        assert [f["site_id"] for f in found if f["kind"] == "mandatory_site_without_system"] == ["s-hospital"]
