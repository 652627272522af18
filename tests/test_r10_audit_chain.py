"""R10, R18: the audit trail is hash-chained with signed checkpoints; ``vsgw audit verify`` passes on
an untouched trail and names the first record changed, removed or reordered in the database."""

from __future__ import annotations

import argparse

import pytest
from sqlalchemy import text

from gateway.audit.cli import _verify
from gateway.policy import Action, subject_access

from .test_policy_support import parts, policy_gateway, user

pytestmark = pytest.mark.asyncio


async def _trail(make_gateway, db_url: str):  # noqa: ANN001, ANN202
    gw = await policy_gateway(make_gateway, db_url)
    _, _, gate = parts(gw)
    op = await user(gw, "op", "wall_operator", clearance=2)
    for cam in ("cam-a", "cam-b", "cam-c", "cam-secret", "cam-a", "cam-b"):
        await gate.authorize(subject_access(op, Action.VIEW_LIVE, gw.camera_resource(cam), "http"))
    key = gw.config.data_path("keys", "audit-ed25519.pub")
    await gw.stop()  # writes the final signed checkpoint
    return gw, argparse.Namespace(config=None, db=db_url, key=str(key), witness=None, stopped=False)


@pytest.mark.parametrize("tamper", ["update", "delete", "swap"])
async def test_r10_audit_verify_names_the_tampered_record(db_url, make_gateway, capsys, tamper: str) -> None:
    gw, args = await _trail(make_gateway, db_url)
    assert await _verify(args) == 0
    assert "audit trail intact" in capsys.readouterr().out
    async with gw.db.session() as s:
        if tamper == "update":
            await s.execute(text("UPDATE audit_records SET reason = 'nothing to see' WHERE seq = 5"))
        elif tamper == "delete":
            await s.execute(text("DELETE FROM audit_records WHERE seq = 5"))
        else:  # swap the content of records 4 and 5, keeping their sequence numbers
            await s.execute(text("UPDATE audit_records SET seq = -1 WHERE seq = 4"))
            await s.execute(text("UPDATE audit_records SET seq = 4 WHERE seq = 5"))
            await s.execute(text("UPDATE audit_records SET seq = 5 WHERE seq = -1"))
    await gw.db.close()
    assert await _verify(args) == 1
    err = capsys.readouterr().err
    expected = {"update": "record 5 was altered", "delete": "record 5 is missing",
                "swap": "record 4 does not follow record 3"}[tamper]
    assert f"BROKEN at record {4 if tamper == 'swap' else 5}" in err and expected in err


async def test_r10_truncated_tail_is_caught_by_the_signed_checkpoint(db_url, make_gateway, capsys) -> None:
    gw, args = await _trail(make_gateway, db_url)
    async with gw.db.session() as s:
        last = (await s.execute(text("SELECT max(seq) FROM audit_records"))).scalar_one()
        await s.execute(text(f"DELETE FROM audit_records WHERE seq = {last}"))
    await gw.db.close()
    assert await _verify(args) == 1
    assert f"BROKEN at record {last}" in capsys.readouterr().err
