"""R4 (WX 26, WX 29) on writes: every registry write is authorised at the record's security level,
and every write response shows the caller exactly what a read would. A clearance-1 administrator
cannot change a level-4 camera or system, and no refusal names or echoes a confidential value."""

from __future__ import annotations

from typing import Any

import aiohttp
import pyotp

from .conftest import synthetic
from .people import person
from .test_catalog_support import SYSTEM, Client, camera, seed
from .test_policy_support import FAST_ARGON2, PASSWORD, parts

MARK = "K4W8"  # every planted confidential value contains it
PLANTED = {"installation_location": f"LOC{MARK}西门", "address_code": f"3202{MARK}0009", "device_type": f"DEV{MARK}-Z"}
CONFIDENTIAL = ("installation_location", "address_code", "device_type")
SECRET = {**SYSTEM, "id": "sys-secret", "name": "Secret CCTV", "site_id": None, "security_level": 4}
OPEN = {**SYSTEM, "id": "sys-open", "name": "Open CCTV", "site_id": None, "security_level": 1}
IMPORT_HEADER = "record,id,name,system_id,site_category,installation_location,address_code,device_type\n"


async def _setup(db_url: str, make_gateway) -> tuple[Any, str]:  # noqa: ANN001
    """A gateway with a level-4 camera holding planted values, and a clearance-1 system administrator."""
    gw = await make_gateway(storage={"url": db_url}, identity=FAST_ARGON2, cameras=[synthetic("ch-a")])
    identity, _, _ = parts(gw)
    secret = await identity.add_user("low-admin", PASSWORD, ["system_admin"], clearance=1)
    token, _, _ = await identity.login("low-admin", PASSWORD, pyotp.TOTP(secret).now(), "127.0.0.1")
    return gw, token


def _no_leak(out: Any) -> None:
    text = str(out)
    assert MARK not in text and not any(f in text for f in CONFIDENTIAL), text


async def test_r4_clearance_1_admin_cannot_write_a_level_4_camera_or_see_it_in_a_refusal(db_url, make_gateway) -> None:
    gw, token = await _setup(db_url, make_gateway)
    async with aiohttp.ClientSession() as s:
        admin = Client(gw, s)
        low = admin.as_(token)
        await seed(admin)
        await admin.ok("POST", "/api/catalog/systems", SECRET)
        await admin.ok("POST", "/api/catalog/systems", OPEN)
        await admin.ok("POST", "/api/catalog/cameras", camera("c-secret", "sys-secret", **PLANTED))
        doc = await admin.ok("POST", "/api/catalog/systems/sys-secret/documents?kind=design&name=plan.pdf",
                             data=f"DESIGN {MARK}".encode())
        before = await admin.ok("GET", "/api/catalog/cameras/c-secret")

        refused = [
            ("PATCH", "/api/catalog/cameras/c-secret", {}),
            ("PATCH", "/api/catalog/cameras/c-secret", {"signage": False, "name": "renamed"}),
            ("PATCH", "/api/catalog/cameras/c-secret", {"address_code": "bad code!"}),  # refused before validation
            ("PUT", "/api/catalog/cameras/c-secret/binding", {"channel_id": "ch-a"}),
            ("PUT", "/api/catalog/cameras/c-secret/binding", {"channel_id": None}),
            ("POST", "/api/catalog/cameras", camera("c-new", "sys-secret", **PLANTED)),
            ("PATCH", "/api/catalog/systems/sys-secret", {}),
            ("PATCH", "/api/catalog/systems/sys-secret", {"security_level": 1}),
            ("PATCH", "/api/catalog/systems/sys-open", {"security_level": 4}),  # no classifying above one's clearance
            ("POST", "/api/catalog/systems", {**SECRET, "id": "sys-secret-2"}),
            ("POST", "/api/catalog/systems/sys-secret/filing", {"filed_on": SYSTEM["accepted_on"]}),
            ("POST", "/api/catalog/systems/sys-secret/decommission", {"notice_on": SYSTEM["accepted_on"]}),
        ]
        for method, path, body in refused:
            status, err = await low.call(method, path, body)
            assert status == 403 and err["error"] == "forbidden", (method, path, status, err)
            assert "security level 4" in err["message"], err
            _no_leak(err)
        status, err = await low.call("POST", "/api/catalog/systems/sys-secret/documents?kind=design&name=x.pdf",
                                     data=b"replacement")
        assert status == 403
        status, err = await low.call("GET", f"/api/catalog/systems/sys-secret/documents/{doc['id']}")
        assert status == 403 and MARK not in str(err)
        csv = IMPORT_HEADER + f"camera,c-imp,Imported,sys-secret,road,LOC{MARK},1{MARK},DEV{MARK}\n"
        status, err = await low.call("POST", "/api/catalog/import", data=csv.encode(),
                                     headers={"Content-Type": "text/csv"})
        assert status == 422 and err["errors"][0]["code"] == "forbidden" and err["errors"][0]["row"] == 2, err
        _no_leak(err)

        # nothing changed, nothing was created
        assert await admin.ok("GET", "/api/catalog/cameras/c-secret") == before
        assert (await admin.ok("GET", "/api/catalog/systems/sys-open"))["security_level"] == 1
        assert (await admin.ok("GET", "/api/catalog/systems/sys-secret"))["security_level"] == 4
        for path in ("/api/catalog/cameras/c-new", "/api/catalog/cameras/c-imp", "/api/catalog/systems/sys-secret-2"):
            assert (await admin.call("GET", path))[0] == 404

        # within its clearance the same admin writes, and sees what it wrote exactly as a read shows it
        made = await low.ok("POST", "/api/catalog/cameras", camera("c-open", "sys-open", device_type="IPC-O"))
        assert made["device_type"] == "IPC-O" and made == await low.ok("GET", "/api/catalog/cameras/c-open")
        patched = await low.ok("PATCH", "/api/catalog/cameras/c-open", {"signage": False})
        assert patched == await low.ok("GET", "/api/catalog/cameras/c-open")
    assert gw.metrics.value("vsgw_catalog_rejected_total", reason="forbidden") == len(refused) + 3  # + documents, import


async def test_r4_write_responses_show_the_caller_exactly_what_its_read_shows(db_url, make_gateway) -> None:
    """The gate lets only a caller who may read a camera's confidential fields write it, and what
    each write returns is that caller's read projection: a clearance-4 police-tier administrator
    sees the planted values after PATCH, binding and create exactly as its GET shows them, while
    the clearance-1 administrator's read of the same camera withholds them."""
    gw, token = await _setup(db_url, make_gateway)
    high = await person(gw, "high-admin", "system_admin", clearance=4, tier="police")
    async with aiohttp.ClientSession() as s:
        admin = Client(gw, s)
        await seed(admin)
        await admin.ok("POST", "/api/catalog/systems", SECRET)
        await admin.ok("POST", "/api/catalog/cameras", camera("c-secret", "sys-secret", **PLANTED))
        low, writer = admin.as_(token), admin.as_(high)
        hidden = await low.ok("GET", "/api/catalog/cameras/c-secret")
        assert hidden["confidential"] == "withheld (R4)"
        _no_leak(hidden)
        read = await writer.ok("GET", "/api/catalog/cameras/c-secret")
        assert {k: read[k] for k in PLANTED} == PLANTED and "confidential" not in read
        writes = [("PATCH", "/api/catalog/cameras/c-secret", {"signage": False}),
                  ("PUT", "/api/catalog/cameras/c-secret/binding", {"channel_id": "ch-a"}),
                  ("PUT", "/api/catalog/cameras/c-secret/binding", {"channel_id": None})]
        for method, path, body in writes:
            out = await writer.ok(method, path, body)
            assert out == await writer.ok("GET", "/api/catalog/cameras/c-secret"), (method, path)
            assert {k: out[k] for k in PLANTED} == PLANTED
        made = await writer.ok("POST", "/api/catalog/cameras", camera("c-two", "sys-secret", **PLANTED))
        assert made == await writer.ok("GET", "/api/catalog/cameras/c-two") and made["device_type"] == PLANTED["device_type"]
        assert (await low.ok("GET", "/api/catalog/cameras/c-two"))["confidential"] == "withheld (R4)"
        csv = IMPORT_HEADER + f"camera,c-imp,Imported,sys-secret,road,LOC{MARK},1{MARK},DEV{MARK}\n"
        out = await writer.ok("POST", "/api/catalog/import", data=csv.encode(), headers={"Content-Type": "text/csv"})
        assert out == {"imported": {"unit": 0, "site": 0, "system": 0, "camera": 1}}
