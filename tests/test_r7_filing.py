"""R7 (QD 16, QD 35, WX 15, WX 16): filing within 30 days of acceptance (60 days from the rules'
start for pre-existing systems); overdue filings flagged; documents archived with their hash."""

from __future__ import annotations

from datetime import date, timedelta
import hashlib

import aiohttp

from .test_catalog_support import UNIT, Client


def system(sid: str, accepted: date, **kw) -> dict:  # noqa: ANN003
    return {"id": sid, "name": sid, "unit_id": "u-transport", "funding": "government", "security_level": 1,
            "status": "accepted", "accepted_on": accepted.isoformat(), **kw}


async def test_r7_overdue_filings_flagged_per_city_rules(db_url, make_gateway) -> None:
    gw = await make_gateway(storage={"url": db_url}, catalog={"city": "qingdao"})
    today = date.today()
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await c.ok("POST", "/api/catalog/units", UNIT)
        await c.ok("POST", "/api/catalog/systems", system("late", today - timedelta(days=31)))
        await c.ok("POST", "/api/catalog/systems", system("in-time", today - timedelta(days=29)))
        await c.ok("POST", "/api/catalog/systems", system("filed-ok", today - timedelta(days=90)))
        await c.ok("POST", "/api/catalog/systems/filed-ok/filing", {"filed_on": (today - timedelta(days=70)).isoformat(),
                                                                   "filing_ref": "QDGA-2024-17"})
        await c.ok("POST", "/api/catalog/systems", system("filed-late", today - timedelta(days=90)))
        await c.ok("POST", "/api/catalog/systems/filed-late/filing", {"filed_on": (today - timedelta(days=45)).isoformat()})
        await c.ok("POST", "/api/catalog/systems", system("legacy", date(2009, 6, 1), pre_existing=True))

        assert (await c.ok("GET", "/api/catalog/systems/legacy"))["filing_due"] == "2010-04-30"  # QD 35
        got = await c.ok("GET", "/api/catalog/systems/filed-ok")
        assert got["status"] == "filed" and got["filing_ref"] == "QDGA-2024-17"
        found = {f["system_id"]: f for f in (await c.ok("GET", "/api/catalog/compliance"))["findings"]
                 if f["kind"] == "filing_overdue"}
        assert set(found) == {"late", "filed-late", "legacy"}
        assert (found["late"]["breaks"], found["late"]["penalty"]) == ("QD 16 ¶1", "QD 28(1)")
        assert "1 days late" in found["late"]["detail"] and "15 days late" in found["filed-late"]["detail"]

        status, err = await c.call("POST", "/api/catalog/systems/late/filing", {"filed_on": "31/12/2024"})
        assert status == 422 and err["field"] == "filed_on" and "YYYY-MM-DD" in err["message"]
        status, err = await c.call("POST", "/api/catalog/systems", system("x", today, accepted_on=None))
        assert status == 422 and err["field"] == "accepted_on"

        content = b"%PDF acceptance report"
        doc = await c.ok("POST", "/api/catalog/systems/late/documents?kind=acceptance&name=acceptance.pdf", data=content)
        assert doc["sha256"] == hashlib.sha256(content).hexdigest()
        listed = (await c.ok("GET", "/api/catalog/systems/late"))["documents"]
        assert [(d["kind"], d["sha256"]) for d in listed] == [("acceptance", doc["sha256"])]
        status, err = await c.call("POST", "/api/catalog/systems/late/documents?kind=poem&name=a.txt", data=b"x")
        assert status == 422 and err["field"] == "kind"
