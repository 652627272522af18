"""R8 (WX 17, QD 16 ¶2): dismantling notices — Wuxi at least 10 days before, Qingdao within 30
days after — late or missing ones flagged; nothing is ever deleted."""

from __future__ import annotations

from datetime import date, timedelta

import aiohttp

from .conftest import synthetic
from .test_catalog_support import UNIT, Client, camera


def system(sid: str) -> dict:
    return {"id": sid, "name": sid, "unit_id": "u-transport", "funding": "government", "security_level": 1,
            "status": "filed", "accepted_on": "2023-01-05"}


def days(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()


async def test_r8_decommission_notice_rules_and_records_kept(db_url, make_gateway) -> None:
    wx = await make_gateway(storage={"url": db_url}, catalog={"city": "wuxi"}, cameras=[synthetic("ch-a")])
    async with aiohttp.ClientSession() as s:
        c = Client(wx, s)
        await c.ok("POST", "/api/catalog/units", UNIT)
        for sid in ("wx-late", "wx-ok", "wx-none"):
            await c.ok("POST", "/api/catalog/systems", system(sid))
        await c.ok("POST", "/api/catalog/cameras", camera("c-1", system="wx-late"))
        await c.ok("PUT", "/api/catalog/cameras/c-1/binding", {"channel_id": "ch-a"})
        await c.ok("POST", "/api/catalog/systems/wx-late/documents?kind=design&name=d.pdf", data=b"design")
        out = await c.ok("POST", "/api/catalog/systems/wx-late/decommission", {"notice_on": days(-15), "dismantled_on": days(-20)})
        assert out["status"] == "decommissioned" and out["notice_late"] is True and out["notice_due"] == days(-30)
        out = await c.ok("POST", "/api/catalog/systems/wx-ok/decommission", {"notice_on": days(-30), "dismantled_on": days(-18)})
        assert out["notice_late"] is False
        await c.ok("POST", "/api/catalog/systems/wx-none/decommission", {"dismantled_on": days(5)})  # due in the past
        found = {f["system_id"]: f for f in (await c.ok("GET", "/api/catalog/compliance"))["findings"]
                 if f["kind"] == "decommission_notice_late"}
        assert set(found) == {"wx-late", "wx-none"}
        assert (found["wx-late"]["breaks"], found["wx-late"]["penalty"]) == ("WX 17", "WX 37")
        assert "no notice" in found["wx-none"]["detail"]

        # records stay: system, camera (released from its channel), documents; no delete route exists
        assert (await c.ok("GET", "/api/catalog/systems/wx-late"))["documents"][0]["kind"] == "design"
        cam = await c.ok("GET", "/api/catalog/cameras/c-1")
        assert cam["status"] == "decommissioned" and cam["channel_id"] is None
        assert wx.camera_resource("ch-a").unit is None
        assert (await c.call("DELETE", "/api/catalog/systems/wx-late"))[0] == 405
        assert (await c.call("DELETE", "/api/catalog/cameras/c-1"))[0] == 405
        status, err = await c.call("PATCH", "/api/catalog/systems/wx-late", {"name": "renamed"})
        assert status == 409 and err["field"] == "status"
        status, err = await c.call("POST", "/api/catalog/systems/wx-ok/decommission", {"dismantled_on": "soon"})
        assert status == 422 and err["field"] == "dismantled_on"

        qd = await make_gateway(storage={"url": db_url}, catalog={"city": "qingdao"})
        q = Client(qd, s)
        for sid in ("qd-ok", "qd-late"):
            await q.ok("POST", "/api/catalog/systems", system(sid))
        out = await q.ok("POST", "/api/catalog/systems/qd-ok/decommission", {"notice_on": days(-5), "dismantled_on": days(-25)})
        assert out["notice_late"] is False  # QD: within 30 days after
        out = await q.ok("POST", "/api/catalog/systems/qd-late/decommission", {"notice_on": days(-1), "dismantled_on": days(-40)})
        assert out["notice_late"] is True
        found = [f for f in (await q.ok("GET", "/api/catalog/compliance"))["findings"]
                 if f["kind"] == "decommission_notice_late" and f["system_id"].startswith("qd-")]
        assert [(f["system_id"], f["breaks"], f["penalty"]) for f in found] == [("qd-late", "QD 16 ¶2", "QD 28(1)")]
