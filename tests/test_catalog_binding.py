"""Binding registry cameras to live channels feeds the policy resolver; writes ask the gate for
MANAGE on the owning unit; bad JSON input names the field and the reason."""

from __future__ import annotations

import aiohttp

from gateway.policy import Resource

from .conftest import synthetic
from .people import FAST_ARGON2, person, trail
from .test_catalog_support import Client, camera, seed


async def test_catalog_binding_feeds_resolver_and_unit_admins_are_scoped(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, identity=FAST_ARGON2, cameras=[synthetic("ch-a"), synthetic("ch-b")])
    housing_token = await person(gw, "housing", "department_admin", unit="u-housing", clearance=5, tier="police")
    transport_token = await person(gw, "transport", "department_admin", unit="u-transport", clearance=3, tier="police")
    async with aiohttp.ClientSession() as s:
        c, housing, transport = Client(gw, s), Client(gw, s, token=housing_token), Client(gw, s, token=transport_token)
        await seed(c)
        await c.ok("POST", "/api/catalog/cameras", camera("c-1", privacy_masks=[[0, 0, 0.25, 0.25]]))
        assert (await c.ok("GET", "/api/catalog/channels/unbound"))["channels"][0]["id"] == "ch-a"
        await c.ok("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": "ch-a"})
        res = gw.camera_resource("ch-a")
        assert res == Resource("camera", "ch-a", unit="u-transport", district="Liangxi", security_level=2,
                               attrs={"system": "sys-station", "camera": "c-1", "privacy_masks": [[0, 0, 0.25, 0.25]],
                                      "site_category": "transport_hub"})
        assert gw.camera_resource("ch-b") == Resource("camera", "ch-b")
        assert [x["id"] for x in (await c.ok("GET", "/api/catalog/channels/unbound"))["channels"]] == ["ch-b"]

        await c.ok("PATCH", "/api/catalog/systems/sys-station", {"security_level": 4})
        assert gw.camera_resource("ch-a").security_level == 4  # the cache follows the system

        status, err = await c.call("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": "ch-missing"})
        assert status == 422 and err["field"] == "channel_id"
        await c.ok("POST", "/api/catalog/cameras", camera("c-2"))
        status, err = await c.call("PUT", "/api/catalog/cameras/c-2/binding", {"channel_id": "ch-a"})
        assert status == 409 and err["field"] == "channel_id"
        await c.ok("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": None})
        assert gw.camera_resource("ch-a") == Resource("camera", "ch-a")

        # another unit's admin is refused by the gate; the registry asked with the owning unit, and
        # at the system's security level (the owning unit's own admin below it is refused too)
        status, err = await housing.call("POST", "/api/catalog/cameras", camera("c-3"))
        assert status == 403 and "own unit" in err["message"]
        assert (await c.call("GET", "/api/catalog/cameras/c-3"))[0] == 404
        status, err = await housing.call("PATCH", "/api/catalog/cameras/c-1", {"signage": False})
        assert status == 403
        refused = await trail(gw, actor="user:housing", action="manage", decision="deny")
        assert [r.resource for r in refused] == ["camera:c-3", "camera:c-1"]
        assert all("own unit (u-housing)" in r.reason for r in refused)
        status, err = await transport.call("PATCH", "/api/catalog/cameras/c-1", {"signage": False})
        assert status == 403 and "clearance 3 is below security level 4" in err["message"]
        await housing.ok("POST", "/api/catalog/units", {"id": "u-housing", "name": "Housing", "type": "department",
                                                        "district": "Binhu"})

        # bad input: every refusal names the field and the reason
        for body, field in (([1, 2], "body"), ({"id": "c-9", "system_id": "sys-station", "nickname": "x"}, "name"),
                            ({**camera("c-9"), "colour": "red"}, "colour"), ({**camera("c-9"), "id": "bad id!"}, "id"),
                            ({**camera("c-9"), "site_category": "moon"}, "site_category")):
            status, err = await c.call("POST", "/api/catalog/cameras", body)
            assert status == 422 and err["field"] == field and err["errors"][0]["reason"], (body, err)
        status, err = await c.call("POST", "/api/catalog/units", data=b"{not json", headers={"Content-Type": "application/json"})
        assert status == 422 and err["field"] == "body"
