"""R6 (QD 9, WX 9): a camera in a prohibited site category is refused with the articles, on create,
re-classification and import; privacy-mask zones reach the policy resource (QD 9 ¶2)."""

from __future__ import annotations

import aiohttp

from .conftest import synthetic
from .test_catalog_support import Client, camera, seed


async def test_r6_prohibited_site_camera_refused_citing_articles(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, cameras=[synthetic("ch-a")])
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await seed(c)
        status, err = await c.call("POST", "/api/catalog/cameras", camera("c-wc", site_category="toilet"))
        assert status == 422 and err["field"] == "site_category" and err["error"] == "prohibited_site"
        assert "QD 9" in err["message"] and "WX 9" in err["message"]
        assert (await c.call("GET", "/api/catalog/cameras/c-wc"))[0] == 404

        await c.ok("POST", "/api/catalog/cameras", camera("c-gate"))
        status, err = await c.call("PATCH", "/api/catalog/cameras/c-gate", {"site_category": "fitting_room"})
        assert status == 422 and err["field"] == "site_category" and "QD 9" in err["message"]
        assert (await c.ok("GET", "/api/catalog/cameras/c-gate"))["site_category"] == "transport_hub"

        site = {"id": "s-dorm", "name": "Dorm", "category": "dormitory", "district": "Liangxi", "unit_id": "u-transport"}
        status, err = await c.call("POST", "/api/catalog/sites", site)
        assert status == 422 and err["field"] == "category" and "WX 9" in err["message"]

        csv = ("record,id,name,system_id,site_category,installation_location,address_code,device_type\n"
               "camera,c-ok,Ok,sys-station,road,Gate,1,IPC\n"
               "camera,c-bath,Bath,sys-station,public_bath,Inside,2,IPC\n")
        status, err = await c.call("POST", "/api/catalog/import", data=csv.encode(), headers={"Content-Type": "text/csv"})
        assert status == 422
        assert [(e["row"], e["field"], e["code"]) for e in err["errors"]] == [(3, "site_category", "prohibited_site")]
        assert "QD 9" in err["errors"][0]["reason"]
        assert (await c.call("GET", "/api/catalog/cameras/c-ok"))[0] == 404  # all or nothing


async def test_r6_privacy_masks_validated_and_given_to_policy(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, cameras=[synthetic("ch-a")])
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await seed(c)
        await c.ok("POST", "/api/catalog/cameras", camera("c-lobby", site_category="lodging_catering"))
        await c.ok("PUT", "/api/catalog/cameras/c-lobby/binding", {"channel_id": "ch-a"})
        assert gw.camera_resource("ch-a").attrs["privacy_masks"] == []
        status, err = await c.call("PATCH", "/api/catalog/cameras/c-lobby", {"privacy_masks": [[0.8, 0.1, 0.3, 0.2]]})
        assert status == 422 and err["field"] == "privacy_masks[0]" and "inside the frame" in err["message"]
        await c.ok("PATCH", "/api/catalog/cameras/c-lobby", {"privacy_masks": [[0.6, 0.0, 0.4, 0.5]]})
        res = gw.camera_resource("ch-a")
        assert res.attrs["privacy_masks"] == [[0.6, 0.0, 0.4, 0.5]]
        assert res.attrs["site_category"] == "lodging_catering"
