"""R16: the audit search and export answer one bounded page at a time: ``limit`` is 1-1000
(default 100), ``before`` is a seq cursor; any other value is a 400 naming the parameter, counted,
and the gateway keeps serving."""

from __future__ import annotations

import json

import aiohttp
import pyotp

from .test_policy_support import PASSWORD, parts, policy_gateway

BULK = 150  # more than the default page


async def test_r16_audit_query_limit_and_cursor_are_validated_and_bounded(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    secret = await identity.add_user("aud", PASSWORD, ["auditor"])
    token, _, _ = await identity.login("aud", PASSWORD, pyotp.TOTP(secret).now(), "127.0.0.1")
    for i in range(BULK):
        await gw.audit.record(actor="user:op", action="test.bulk", resource=f"camera:c-{i}", decision="allow",
                              reason="bulk")
    base = f"http://127.0.0.1:{gw.http_port}/api/audit"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async def search(**params: str) -> tuple[int, dict]:
            async with http.get(base, params={"action": "test.bulk", **params}) as r:
                return r.status, await r.json()

        status, page = await search()
        assert status == 200 and len(page["records"]) == 100  # the default page
        bad = [("limit", v) for v in ("-1", "0", "1001", "abc", "1.5", "", " 5", "1_0", "+5", "٥", "9" * 30)]
        bad += [("before", v) for v in ("0", "-3", "x", "", "9" * 30)]
        for name, value in bad:
            status, err = await search(**{name: value})
            assert status == 400 and err["field"] == name and "whole number from" in err["message"], (name, value, err)
        async with http.get(f"{base}/export", params={"limit": "-1"}) as r:
            assert r.status == 400 and (await r.json())["field"] == "limit"
        bad_count = len(bad) + 1

        # paging with the cursor walks the whole filtered trail once, newest first
        seen: list[int] = []
        cursor: dict[str, str] = {}
        while True:
            status, page = await search(limit="40", **cursor)
            assert status == 200 and len(page["records"]) <= 40
            if not page["records"]:
                break
            seen += [r["seq"] for r in page["records"]]
            cursor = {"before": str(seen[-1])}
        assert len(seen) == BULK and seen == sorted(set(seen), reverse=True)
        status, page = await search(limit="1000")
        assert status == 200 and [r["seq"] for r in page["records"]] == seen

        async with http.get(f"{base}/export", params={"limit": "2", "before": str(seen[0])}) as r:
            lines = (await r.text()).rstrip("\n").split("\n")
        assert [json.loads(line)["seq"] for line in lines[:-1]] == [seen[2], seen[1]]
    assert gw.metrics.value("vsgw_http_rejected_total", status="400") == bad_count
