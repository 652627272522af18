"""Bulk CSV import: all rows checked first; one bad row → nothing written and every error comes
back as (row, field, reason); a good file registers units, sites, systems and cameras at once."""

from __future__ import annotations

import aiohttp

from .test_catalog_support import Client

HEADER = ("record,id,name,type,district,unit_id,category,funding,security_level,status,accepted_on,site_id,"
          "system_id,site_category,installation_location,address_code,device_type,signage,privacy_masks\n")
GOOD = [
    "unit,u-city,City Management,department,Xinwu,,,,,,,,,,,,,,",
    "site,s-park,Central Park,,Xinwu,u-city,square,,,,,,,,,,,,",
    "system,sys-park,Park CCTV,,,u-city,,government,2,built,2025-01-02,s-park,,,,,,,",
    "camera,c-park-1,Gate,,,,,,,,,,sys-park,square,East gate pole 3,32021400001320000011,IPC-X,yes,",
    'camera,c-park-2,Kiosk,,,,,,,,,,sys-park,square,Kiosk,32021400001320000012,IPC-Y,no,"0.1,0.1,0.2,0.2"',
]


async def post(c: Client, lines: list[str]) -> tuple[int, dict]:
    return await c.call("POST", "/api/catalog/import", data=(HEADER + "\n".join(lines) + "\n").encode(),
                        headers={"Content-Type": "text/csv"})


async def test_catalog_import_registers_everything(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url})
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        status, out = await post(c, list(reversed(GOOD)))  # order in the file does not matter
        assert status == 201 and out["imported"] == {"unit": 1, "site": 1, "system": 1, "camera": 2}
        cam = await c.ok("GET", "/api/catalog/cameras/c-park-2")
        assert cam["privacy_masks"] == [[0.1, 0.1, 0.2, 0.2]] and cam["signage"] is False
        listed = await c.ok("GET", "/api/catalog/cameras?system_id=sys-park&q=gat")
        assert [x["id"] for x in listed["cameras"]] == ["c-park-1"] and listed["more"] is False
        listed = await c.ok("GET", "/api/catalog/cameras?q=c-park&limit=1")
        assert [x["id"] for x in listed["cameras"]] == ["c-park-1"] and listed["more"] is True


BAD = [
    ("camera,c-bad,Bad,,,,,,,,,,sys-park,toilet,WC,1,IPC,yes,", (7, "site_category", "prohibited_site")),
    ("camera,c-bad,Bad,,,,,,,,,,sys-nowhere,road,Pole,1,IPC,yes,", (7, "system_id", "not_found")),
    ("system,sys-2,Two,,,u-city,,government,eleven,built,2025-01-02,,,,,,,,", (7, "security_level", "invalid")),
    ("camera,c-park-1,Dup,,,,,,,,,,sys-park,road,Pole,1,IPC,yes,", (7, "id", "duplicate")),
    ('camera,c-bad,Bad,,,,,,,,,,sys-park,road,Pole,1,IPC,yes,"0.9,0.9,0.5,0.5"', (7, "privacy_masks[0]", "invalid")),
    ("tower,t-1,T,,,,,,,,,,,,,,,,", (7, "record", "invalid")),
    ("unit,u-x,X,department,Xinwu,,,,,,,,,,Somewhere,,,,", (7, "installation_location", "unknown_field")),
]


async def test_catalog_import_one_bad_row_changes_nothing(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url})
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        for bad, expected in BAD:
            status, err = await post(c, GOOD + [bad])
            assert status == 422, err
            assert [(e["row"], e["field"], e["code"]) for e in err["errors"]] == [expected], bad
            assert err["errors"][0]["reason"]
            for kind, ident in (("units", "u-city"), ("sites", "s-park"), ("systems", "sys-park"), ("cameras", "c-park-1")):
                assert (await c.call("GET", f"/api/catalog/{kind}/{ident}"))[0] == 404
            assert (await c.call("GET", "/catalogue.json"))[1]["systems"] == []
        status, err = await post(c, GOOD[:2] + ["site,s-bad,Bad,,Xinwu,u-city,moon,,,,,,,,,,,,", GOOD[2].replace("s-park", "s-none")])
        assert [(e["row"], e["field"]) for e in err["errors"]] == [(4, "category"), (5, "site_id")]  # every error at once
        assert 'vsgw_catalog_rejected_total{reason="import"}' in gw.metrics.render()
