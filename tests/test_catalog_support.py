"""Helpers for the catalog tests (R3–R8, R17, R19): an HTTP client bound to one gateway and a
small seeded registry. Also tests of the site vocabulary and city rules that need no gateway."""

from __future__ import annotations

from datetime import date
from typing import Any

import aiohttp

from catalog.rules import QINGDAO, WUXI
from catalog.sites import categories

from .conftest import TOKEN


class Client:
    """Talks to the gateway over HTTP; ``token=None`` is an anonymous caller."""

    def __init__(self, gw: Any, session: aiohttp.ClientSession, token: str | None = TOKEN) -> None:
        self.base = f"http://127.0.0.1:{gw.http_port}"
        self.session, self.token = session, token

    def as_(self, token: str | None) -> Client:
        other = Client.__new__(Client)
        other.base, other.session, other.token = self.base, self.session, token
        return other

    async def call(self, method: str, path: str, body: Any = None, *, data: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        async with self.session.request(method, self.base + path, json=body, data=data, headers=h) as r:
            text = await r.text()
            if r.content_type == "application/json":
                import json

                return r.status, json.loads(text)
            return r.status, text

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = await self.call(method, path, body, **kw)
        assert status in (200, 201), (method, path, status, out)
        return out


UNIT = {"id": "u-transport", "name": "Transport Bureau", "type": "department", "district": "Liangxi"}
SITE = {"id": "s-station", "name": "Railway Station Square", "category": "transport_hub", "district": "Liangxi",
        "unit_id": "u-transport"}
SYSTEM = {"id": "sys-station", "name": "Station CCTV", "unit_id": "u-transport", "site_id": "s-station",
          "funding": "government", "security_level": 2, "status": "accepted", "accepted_on": date.today().isoformat()}


def camera(cid: str, system: str = "sys-station", **kw: Any) -> dict[str, Any]:
    return {"id": cid, "name": f"Camera {cid}", "system_id": system, "site_category": "transport_hub",
            "installation_location": "North gate", "address_code": "32020000001320000001",
            "device_type": "IPC-B", "signage": True, **kw}


async def seed(c: Client) -> None:
    await c.ok("POST", "/api/catalog/units", UNIT)
    await c.ok("POST", "/api/catalog/sites", SITE)
    await c.ok("POST", "/api/catalog/systems", SYSTEM)


def test_r5_vocabulary_marks_mandatory_and_prohibited_with_articles() -> None:
    cats = categories()
    prohibited = {c for c, v in cats.items() if v.prohibited}
    assert prohibited == {"hotel_room", "dormitory", "public_bath", "toilet", "changing_room", "nursing_room",
                          "fitting_room"}
    assert all(set(cats[c].articles) >= {"QD 9", "WX 9"} for c in prohibited - {"nursing_room", "fitting_room"})
    for code, cat in cats.items():
        assert cat.zh and cat.en, code
        if cat.mandatory:
            assert any(a.startswith(("QD 7", "WX 8")) for a in cat.articles), code


def test_r7_r8_city_rules_deadlines() -> None:
    assert WUXI.filing_due(date(2024, 3, 1)) == date(2024, 3, 31)
    assert WUXI.filing_due(date(2018, 5, 1)) == date(2019, 9, 30)  # pre-existing: 60 days from 2019-08-01
    assert QINGDAO.filing_due(date(2009, 5, 1)) == date(2010, 4, 30)  # 60 days from 2010-03-01 (QD 35)
    assert WUXI.notice_due(date(2024, 6, 20)) == date(2024, 6, 10)  # WX 17: 10 days before
    assert QINGDAO.notice_due(date(2024, 6, 20)) == date(2024, 7, 20)  # QD 16: within 30 days after
