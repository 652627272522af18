"""R18 (MLPS level 3): argon2 passwords, TOTP required for privileged roles and usable once, lock-out
after repeated failures, one answer for every failed login (the audit keeps the cause), HttpOnly
session cookies, logout, sessions listed and revoked; machine clients only when registered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pyotp
import pytest
from sqlalchemy import select

from gateway.audit.chain import AuditRow
from gateway.identity import service
from gateway.identity.service import Identity, IdentityConfig, LoginError

from .test_policy_support import FAST_ARGON2, PASSWORD, parts, policy_gateway

pytestmark = pytest.mark.asyncio


async def denial_reasons(gw, actor: str) -> list[str]:  # noqa: ANN001
    """The reasons the audit trail recorded for ``actor``'s refused logins, oldest first."""
    async with gw.db.session() as s:
        rows = await s.scalars(select(AuditRow).where(AuditRow.actor == actor, AuditRow.action == "login",
                                                      AuditRow.decision == "deny").order_by(AuditRow.seq))
        return [r.reason for r in rows]


def wrong_code(secret: str) -> str:
    """A six-digit code that no time-step a login accepts right now produces."""
    totp, now = pyotp.TOTP(secret), datetime.now(UTC)
    valid = {totp.at(now + timedelta(seconds=d)) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(10)) if c not in valid)


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
        assert status == 401 and err["message"] == LoginError.MESSAGE  # even the right password, while locked
    assert await denial_reasons(gw, "user:op") == ["wrong password"] * 2 + ["wrong password; locked for 15 min",
                                                                           "account locked"]


async def test_r18_only_registered_certificates_map_to_subjects(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url, identity={"clients": ["police-platform=police:5:u-police"]})
    subject = gw.certificate_subject("police-platform")
    assert subject is not None and subject.tier == "police" and subject.clearance == 5 and "platform" in subject.roles
    assert gw.certificate_subject("someone-else") is None


async def test_r18_failed_logins_all_answer_alike_and_the_audit_keeps_why(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url, identity={"max_failures": 4})
    identity, _, _ = parts(gw)
    await identity.add_user("op", PASSWORD, ["wall_operator"])
    await identity.add_user("gone", PASSWORD, ["wall_operator"])
    secret = await identity.add_user("root", PASSWORD, ["system_admin"])
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async def login(**body) -> tuple[int, dict]:  # noqa: ANN003
            async with http.post(f"{base}/api/login", json=body) as resp:
                return resp.status, await resp.json()

        for _ in range(4):
            await login(username="gone", password="not the password")
        answers = [await login(username="nobody", password=PASSWORD),
                   await login(username="op", password="not the password"),
                   await login(username="root", password=PASSWORD),
                   await login(username="root", password=PASSWORD, totp=wrong_code(secret)),
                   await login(username="root", password=PASSWORD, totp="１２３４５６"),  # full-width, from an IME
                   await login(username="gone", password=PASSWORD)]
    assert answers == [(401, {"error": "login_refused", "message": LoginError.MESSAGE})] * 6
    assert await denial_reasons(gw, "user:nobody") == ["unknown user"]
    assert await denial_reasons(gw, "user:op") == ["wrong password"]
    assert await denial_reasons(gw, "user:root") == ["no TOTP code", "wrong TOTP code", "wrong TOTP code"]
    assert (await denial_reasons(gw, "user:gone"))[-1] == "account locked"


async def test_r18_a_totp_code_is_accepted_once_even_after_a_restart(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    secret = await identity.add_user("root", PASSWORD, ["system_admin"])
    code = pyotp.TOTP(secret).now()
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        statuses, body = [], {"username": "root", "password": PASSWORD, "totp": code}
        for _ in range(2):
            async with http.post(f"{base}/api/login", json=body) as r:
                statuses.append((r.status, (await r.json()).get("message")))
    assert statuses == [(200, None), (401, LoginError.MESSAGE)]
    assert await denial_reasons(gw, "user:root") == ["TOTP code already used"]
    restarted = Identity(gw.db, IdentityConfig(**FAST_ARGON2))  # the step is stored, not held in memory
    with pytest.raises(LoginError) as refused:
        await restarted.login("root", PASSWORD, code)
    assert refused.value.reason == "TOTP code already used"


async def test_r18_an_older_code_after_a_newer_one_and_racing_logins_are_refused(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    secret = await identity.add_user("chief", PASSWORD, ["police_chief"])
    totp, now = pyotp.TOTP(secret), datetime.now(UTC)
    await identity.login("chief", PASSWORD, totp.at(now))
    with pytest.raises(LoginError) as refused:
        await identity.login("chief", PASSWORD, totp.at(now - timedelta(seconds=30)))  # still inside the window
    assert refused.value.reason == "TOTP code already used"

    racer = await identity.add_user("commander", PASSWORD, ["emergency_commander"])
    code = pyotp.TOTP(racer).now()
    results = await asyncio.gather(*(identity.login("commander", PASSWORD, code) for _ in range(3)),
                                   return_exceptions=True)
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert {r.reason for r in results if isinstance(r, LoginError)} == {"TOTP code already used"}


async def test_r18_sessions_are_listed_and_revoked_by_user_or_by_session(db_url, make_gateway) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    await identity.add_user("op", PASSWORD, ["wall_operator"])
    first, _, first_subject = await identity.login("op", PASSWORD, None)
    second, _, second_subject = await identity.login("op", PASSWORD, None)
    relative = await identity.issue_relative_session("Li Mei", "g-1", datetime.now(UTC) + timedelta(hours=1))
    listed = await identity.sessions_of("user:op")
    assert [a.session for a in listed] == [first_subject.session, second_subject.session]
    assert all(first not in repr(a) and a.expires > a.created for a in listed)
    assert [a.subject_id for a in await identity.sessions_of("relative:g-1")] == ["relative:g-1"]

    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        async def me(token: str) -> int:
            async with http.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status

        assert [await me(t) for t in (first, second, relative)] == [200, 200, 200]  # all cached now
        assert await identity.revoke_sessions(session=first_subject.session) == 1
        assert [await me(t) for t in (first, second, relative)] == [401, 200, 200]
        assert await identity.revoke_sessions("relative:g-1") == 1
        assert await identity.revoke_sessions("user:op") == 1
        assert [await me(t) for t in (first, second, relative)] == [401, 401, 401]
    assert await identity.sessions_of("user:op") == [] and await identity.revoke_sessions("user:op") == 0
    for bad in ({}, {"subject_id": "op"}, {"session": "not-a-session"}, {"subject_id": "user:op", "session": "0" * 16}):
        with pytest.raises(ValueError):
            await identity.revoke_sessions(**bad)


async def test_r18_another_node_stops_honouring_a_revoked_session(db_url, make_gateway, monkeypatch) -> None:
    gw = await policy_gateway(make_gateway, db_url)
    identity, _, _ = parts(gw)
    await identity.add_user("op", PASSWORD, ["wall_operator"])
    token, _, _ = await identity.login("op", PASSWORD, None)
    other_node = Identity(gw.db, IdentityConfig(**FAST_ARGON2))
    monkeypatch.setattr(service, "CACHE_SECONDS", 0)  # what CACHE_SECONDS later looks like, without waiting
    assert await other_node.authenticate(token, None) is not None
    await identity.revoke_sessions("user:op")
    assert await other_node.authenticate(token, None) is None
