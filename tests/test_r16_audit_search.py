"""R16, R18: every view is in the audit trail; auditors search it and export it as signed JSON lines
over HTTP; system administrators and the service token cannot read it (separation of duties)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
import hashlib
import json

import aiohttp
from cryptography.hazmat.primitives import serialization
import pyotp
import pytest

from gateway.policy import Action, subject_access

from .conftest import auth
from .test_policy_support import PASSWORD, parts, policy_gateway, user

pytestmark = pytest.mark.asyncio


async def test_r16_views_are_audited_and_only_auditors_search_and_export(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, gate = parts(gw)
    op = await user(gw, "op", "wall_operator", clearance=2)
    cam_a, secret_cam = gw.camera_resource("cam-a"), gw.camera_resource("cam-secret")
    footage = (datetime(2026, 11, 23, 8, tzinfo=UTC), datetime(2026, 11, 23, 9, tzinfo=UTC))
    await gate.authorize(subject_access(op, Action.VIEW_LIVE, cam_a, "http", request_id="req-1"))
    await gate.authorize(subject_access(op, Action.VIEW_LIVE, secret_cam, "http"))
    await gate.authorize(subject_access(op, Action.VIEW_PLAYBACK, cam_a, "http", window=footage))
    secret = await identity.add_user("aud", PASSWORD, ["auditor"])
    root_secret = await identity.add_user("root", PASSWORD, ["system_admin"])
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async def token_of(name: str, totp: str) -> dict[str, str]:
            async with http.post(f"{base}/api/login", json={"username": name, "password": PASSWORD, "totp": totp}) as r:
                return {"Authorization": f"Bearer {(await r.json())['token']}"}

        auditor, root = await token_of("aud", pyotp.TOTP(secret).now()), await token_of("root", pyotp.TOTP(root_secret).now())
        for headers in (root, auth()):
            async with http.get(f"{base}/api/audit", headers=headers) as resp:
                assert resp.status == 403 and "only auditors" in (await resp.json())["message"]
        async with http.get(f"{base}/api/audit", params={"actor": op.id}, headers=auditor) as resp:
            records = (await resp.json())["records"]
        assert [(r["resource"], r["action"], r["decision"]) for r in records] == [
            ("camera:cam-a", "view_playback", "allow"), ("camera:cam-secret", "view_live", "deny"),
            ("camera:cam-a", "view_live", "allow")]
        assert records[2]["request_id"] == "req-1" and "clearance 2 is below security level 4" in records[1]["reason"]
        assert (records[0]["extra"]["start"], records[0]["extra"]["end"]) == tuple(t.isoformat() for t in footage)
        async with http.get(f"{base}/api/audit/export", headers=auditor) as resp:
            text = await resp.text()
        async with http.get(f"{base}/api/audit/key", headers=auditor) as resp:
            public = serialization.load_pem_public_key(await resp.read())
    *lines, trailer = text.rstrip("\n").split("\n")
    signed = json.loads(trailer)
    body = "\n".join(lines)
    assert hashlib.sha256(body.encode()).hexdigest() == signed["export_sha256"]
    public.verify(bytes.fromhex(signed["signature_ed25519"]), signed["export_sha256"].encode())  # raises if forged
    exported = [json.loads(line) for line in lines]
    assert [r["seq"] for r in exported] == sorted(r["seq"] for r in exported)
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(exported, exported[1:]))


async def test_r16_operator_report_from_a_tile_reaches_the_police_and_only_them(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    tokens = {}
    for name, role, kw in (("op", "wall_operator", {"clearance": 2}), ("cop", "police_officer", {"tier": "police"})):
        secret = await identity.add_user(name, PASSWORD, [role], **kw)
        token, _, _ = await identity.login(name, PASSWORD, pyotp.TOTP(secret).now() if secret else None, "127.0.0.1")
        tokens[name] = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{gw.http_port}"
    note = "两人在东门翻越围栏 / two people climbing the east gate fence"
    async with aiohttp.ClientSession() as http:
        with gw.bus.subscribe("report.") as events:
            async with http.post(f"{base}/api/reports", json={"camera_id": "cam-a", "note": note}, headers=tokens["op"]) as r:
                assert r.status == 201
                raised = await r.json()
            event = await asyncio.wait_for(events.get(), 5)
        assert event.report_id == raised["id"] and event.camera_id == "cam-a" and event.reporter.endswith(":op")
        assert note not in json.dumps(event.to_dict(), ensure_ascii=False)  # the bus (and SSE) carry ids only
        async with http.post(f"{base}/api/reports", json={"camera_id": "cam-secret", "note": "x"}, headers=tokens["op"]) as r:
            assert r.status == 403  # cannot report on what the gate would not show
        async with http.post(f"{base}/api/reports", json={"camera_id": "cam-a", "note": "  "}, headers=tokens["op"]) as r:
            assert r.status == 400 and (await r.json())["field"] == "note"
        async with http.get(f"{base}/api/reports", headers=tokens["op"]) as r:
            assert r.status == 403
        async with http.get(f"{base}/api/reports", headers=tokens["cop"]) as r:
            reports = (await r.json())["reports"]
    assert [(x["id"], x["camera_id"], x["note"]) for x in reports] == [(raised["id"], "cam-a", note)]
    assert reports[0]["audit_seq"] == raised["audit_seq"]
