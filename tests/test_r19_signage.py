"""R19 (QD 17, WX 14): signage is recorded on each camera and a camera without it is a finding
citing the city's article (Qingdao: QD 17, penalty QD 28(2))."""

from __future__ import annotations

import aiohttp

from .test_catalog_support import Client, camera, seed


async def test_r19_missing_signage_reported_until_recorded(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, catalog={"city": "qingdao"})
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await seed(c)
        await c.ok("POST", "/api/catalog/cameras", camera("c-1", signage=False))
        await c.ok("POST", "/api/catalog/cameras", camera("c-2", signage=True))
        found = [f for f in (await c.ok("GET", "/api/catalog/compliance"))["findings"] if f["kind"] == "missing_signage"]
        assert [(f["camera_id"], f["breaks"], f["penalty"]) for f in found] == [("c-1", "QD 17", "QD 28(2)")]
        assert "QD 17" in await c.ok("GET", "/catalog/compliance.html")

        status, err = await c.call("PATCH", "/api/catalog/cameras/c-1", {"signage": "perhaps"})
        assert status == 422 and err["field"] == "signage"
        assert (await c.ok("PATCH", "/api/catalog/cameras/c-1", {"signage": True}))["signage"] is True
        assert (await c.ok("GET", "/api/catalog/cameras/c-1"))["signage"] is True
        found = [f for f in (await c.ok("GET", "/api/catalog/compliance"))["findings"] if f["kind"] == "missing_signage"]
        assert found == []
