"""R4 (WX 26, WX 29): installation location, address code, device type and design documents never
appear in public outputs, error messages or logs, nor to a caller without the clearance."""

from __future__ import annotations

import logging

import aiohttp
from gateway.policy import Subject

from .conftest import synthetic
from .test_catalog_support import Client, camera, seed

MARK = "Q7Z9"  # every planted confidential value contains it
PLANTED = {"installation_location": f"LOC{MARK}北门岗亭", "address_code": f"3202{MARK}0001", "device_type": f"DEV{MARK}-X"}


async def test_r4_planted_confidential_values_leak_nowhere(db_url, make_gateway, caplog) -> None:
    caplog.set_level(logging.INFO)  # the database drivers echo SQL parameters at DEBUG; ours log nothing there either
    for name in ("gateway", "catalog", "adapters", "vsgw", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    gw = await make_gateway(storage={"url": db_url}, cameras=[synthetic("ch-a")])

    async def viewer(token: str, request) -> Subject | None:  # noqa: ANN001
        return Subject(id="viewer", roles=frozenset({"auditor"}), clearance=0) if token == "viewer-token" else None

    gw.authenticators.append(viewer)
    outputs: list[str] = []
    async with aiohttp.ClientSession() as s:
        admin, anon, low = Client(gw, s), Client(gw, s, token=None), Client(gw, s, token="viewer-token")
        await seed(admin)
        await admin.ok("POST", "/api/catalog/cameras", camera("c-1", signage=False, **PLANTED))
        await admin.ok("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": "ch-a"})
        doc = await admin.ok("POST", f"/api/catalog/systems/sys-station/documents?kind=design&name=plan{MARK}.pdf",
                             data=f"DESIGN {MARK} body".encode())
        # the holder of the records sees them (authorised access)
        got = await admin.ok("GET", "/api/catalog/cameras/c-1")
        assert got["installation_location"] == PLANTED["installation_location"]
        body = await admin.ok("GET", f"/api/catalog/systems/sys-station/documents/{doc['id']}")
        assert MARK in body

        # refused inputs carrying confidential values: the errors name the field, not the value
        bad = [camera("c-2", installation_location=f"LOC{MARK}" * 100),
               camera("c-3", address_code=f"ADDR-{MARK}!"),
               camera("c-4", site_category="toilet", **PLANTED),
               camera("c-1", **PLANTED)]
        for b in bad:
            status, err = await admin.call("POST", "/api/catalog/cameras", b)
            assert status in (409, 422) and err.get("field"), err
            outputs.append(str(err))
        status, err = await admin.call("PATCH", "/api/catalog/cameras/c-1", {"address_code": f"{MARK} x"})
        assert status == 422 and err["field"] == "address_code"
        outputs.append(str(err))
        csv = ("record,id,name,system_id,site_category,installation_location,address_code,device_type\n"
               f"camera,c-5,X,sys-none,road,LOC{MARK},1{MARK},DEV{MARK}\n")
        status, err = await admin.call("POST", "/api/catalog/import", data=csv.encode(),
                                       headers={"Content-Type": "text/csv"})
        assert status == 422
        outputs.append(str(err))

        # every public output, and what a caller without clearance gets
        for path in ("/catalogue", "/catalogue?lang=en", "/catalogue.json", "/catalogue.csv",
                     "/api/catalog/site-categories", "/catalogue/nope"):
            outputs.append(str((await anon.call("GET", path))[1]))
        for path in ("/api/catalog/cameras/c-1", "/api/catalog/cameras?q=Camera", "/api/catalog/systems/sys-station",
                     "/api/catalog/compliance", "/api/catalog/compliance.csv", "/catalog/compliance.html?lang=en"):
            status, out = await low.call("GET", path)
            assert status == 200, (path, out)
            if path == "/api/catalog/compliance":  # the report ran over the planted camera
                assert any(f["camera_id"] == "c-1" and f["kind"] == "missing_signage" for f in out["findings"])
            outputs.append(str(out))
        low_cam = (await low.call("GET", "/api/catalog/cameras/c-1"))[1]
        assert "installation_location" not in low_cam and low_cam["confidential"] == "withheld (R4)"
        outputs.append(str(gw.camera_resource("ch-a")))
    await gw.stop()  # flush everything that logs on the way out
    outputs.append(caplog.text)
    leaks = [o[max(0, o.index(MARK) - 200):o.index(MARK) + 50] for o in outputs if MARK in o]
    assert not leaks, leaks
