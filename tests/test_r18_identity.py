"""R18 (MLPS level 3): argon2 passwords, TOTP required for privileged roles, lock-out after repeated
failures, HttpOnly session cookies, logout; machine clients only when registered."""

from __future__ import annotations

import aiohttp
import pyotp
import pytest

from .test_policy_support import PASSWORD, parts, policy_gateway

pytestmark = pytest.mark.asyncio


async def test_r18_totp_required_for_privileged_roles_and_lockout(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url, identity={"max_failures": 3})
    identity, _, _ = parts(gw)
    secret = await identity.add_user("root", PASSWORD, ["system_admin"])
    assert secret and await identity.add_user("op", PASSWORD, ["wall_operator"]) is None
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async def login(**body) -> tuple[int, dict]:  # noqa: ANN003
            async with http.post(f"{base}/api/login", json=body) as resp:
                return resp.status, await resp.json()

        status, err = await login(username="root", password=PASSWORD)
        assert status == 401 and "TOTP" in err["message"]
        status, ok = await login(username="root", password=PASSWORD, totp=pyotp.TOTP(secret).now())
        assert status == 200 and ok["user"]["roles"] == ["system_admin"]
        async with http.post(f"{base}/api/login", json={"username": "op", "password": PASSWORD}) as resp:
            cookie = resp.headers["Set-Cookie"]
            op_token = (await resp.json())["token"]
        assert resp.status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        headers = {"Authorization": f"Bearer {op_token}"}
        async with http.get(f"{base}/api/me", headers=headers) as resp:
            assert resp.status == 200 and (await resp.json())["roles"] == ["wall_operator"]
        async with http.post(f"{base}/api/logout", headers=headers) as resp:
            assert resp.status == 200
        async with http.get(f"{base}/api/me", headers=headers) as resp:
            assert resp.status == 401  # the session is gone
        for _ in range(3):
            assert (await login(username="op", password="wrong password!"))[0] == 401
        status, err = await login(username="op", password=PASSWORD)
        assert status == 401 and "locked" in err["message"]  # even the right password, while locked
        status, err = await login(username="nobody", password=PASSWORD)
        assert status == 401 and err["message"] == "wrong username, password or code"


async def test_r18_only_registered_certificates_map_to_subjects(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url, identity={"clients": ["police-platform=police:5:u-police"]})
    subject = gw.certificate_subject("police-platform")
    assert subject is not None and subject.tier == "police" and subject.clearance == 5 and "platform" in subject.roles
    assert gw.certificate_subject("someone-else") is None
