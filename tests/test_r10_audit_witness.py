"""R10, R18: an attacker who can write the database but holds neither the signing key nor the
witness file cannot rewrite or cut the audit trail unseen. Re-hashing the chain forward forces
deleting checkpoints, which the interval rule catches; a cut tail with its checkpoints is caught
by the clean-stop marker and by the witness; a rewritten witness fails its signatures."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from gateway.audit.chain import GENESIS, AuditRow, CheckpointRow, record_fields, row_hash
from gateway.audit.cli import _verify
from gateway.config import NodeConfig

pytestmark = pytest.mark.asyncio
EVERY = 5
RECORDS = 23  # with the clean-stop record: 24 records, checkpoints at 5, 10, 15, 20 and the stop at 24


async def _trail(make_gateway, db_url: str):
    """A stopped gateway's trail: a few records one by one, then a burst committed as one batch."""
    gw = await make_gateway(storage={"url": db_url}, audit={"checkpoint_every": EVERY})
    for i in range(3):
        await gw.audit.record(actor="user:op", action="view.live", resource=f"camera:cam-{i}", decision="allow")
    await asyncio.gather(*(gw.audit.record(actor="user:op", action="view.live", resource=f"camera:cam-{i}",
                                           decision="deny", reason="tier") for i in range(RECORDS - 3)))
    await gw.stop()
    return gw


def _args(gw, db_url: str, witness: bool = True, stopped: bool = False) -> argparse.Namespace:
    """``vsgw audit verify -c gateway.toml [--witness FILE] [--stopped]`` as an auditor runs it: the
    config gives the database, the public key (in the data dir) and the checkpoint interval."""
    config = Path(gw.config.get(NodeConfig).data_dir).parent / "gateway.toml"
    config.write_text(f'[node]\ndata_dir = "{gw.config.get(NodeConfig).data_dir}"\n[storage]\nurl = "{db_url}"\n'
                      f"[audit]\ncheckpoint_every = {EVERY}\n")
    return argparse.Namespace(config=str(config), db=None, key=None,
                              witness=str(_witness_file(gw)) if witness else None, stopped=stopped)


def _witness_file(gw) -> Path:
    return gw.config.data_path("audit-witness.jsonl")


async def _verdict(args: argparse.Namespace, capsys) -> tuple[int, str]:
    code = await _verify(args)
    out = capsys.readouterr()
    return code, out.out + out.err


async def _rewrite(gw, seq: int) -> None:
    """What an attacker who knows the scheme does: change record ``seq``, re-hash every later record,
    and delete the checkpoints the re-hashed chain no longer matches."""
    async with gw.db.session() as s:
        rows = list(await s.scalars(select(AuditRow).where(AuditRow.seq >= seq).order_by(AuditRow.seq)))
        head = GENESIS if seq == 1 else await s.scalar(select(AuditRow.hash).where(AuditRow.seq == seq - 1))
        rows[0].reason = "nothing to see"
        for row in rows:
            row.prev_hash = head
            row.hash = head = row_hash(head, row.seq, record_fields(row))
        await s.execute(delete(CheckpointRow).where(CheckpointRow.seq >= seq))
    await gw.db.close()


async def _cut(gw, after: int) -> None:
    """Remove every record after ``after`` and every checkpoint that signed them."""
    async with gw.db.session() as s:
        await s.execute(delete(AuditRow).where(AuditRow.seq > after))
        await s.execute(delete(CheckpointRow).where(CheckpointRow.seq > after))
    await gw.db.close()


async def test_r10_clean_trail_verifies_with_its_witness_and_clean_stop(db_url, make_gateway, capsys) -> None:
    gw = await _trail(make_gateway, db_url)
    lines = [json.loads(line) for line in _witness_file(gw).read_text().splitlines()]
    assert [e["seq"] for e in lines] == [5, 10, 15, 20, 24] and lines[-1]["kind"] == "stop"
    async with gw.db.session() as s:
        signed = list(await s.scalars(select(CheckpointRow).order_by(CheckpointRow.seq)))
        stop = await s.scalar(select(AuditRow).where(AuditRow.seq == RECORDS + 1))
    await gw.db.close()
    assert [(c.seq, c.hash, c.signature) for c in signed] == [(e["seq"], e["hash"], e["signature"]) for e in lines]
    assert stop.action == "audit.stop"
    code, text = await _verdict(_args(gw, db_url, stopped=True), capsys)
    assert code == 0, text
    assert f"intact: {RECORDS + 1} records, 5 signed checkpoints, 5 witnessed" in text
    assert "clean-stop marker at record 24" in text


@pytest.mark.parametrize("witness", [False, True])
async def test_r10_rehash_forward_and_checkpoint_deletion_is_caught(db_url, make_gateway, capsys, witness) -> None:
    gw = await _trail(make_gateway, db_url)
    await _rewrite(gw, 12)  # the checkpoints at 15, 20 and 24 no longer match and go
    code, text = await _verdict(_args(gw, db_url, witness=witness), capsys)
    assert code == 1
    if witness:
        assert "BROKEN at record 15: rewritten: the chain at record 15 no longer matches the head witnessed" in text
        assert "a record in 11..15 was changed" in text
    else:
        assert "BROKEN at record 11: unsigned tail: records 11..24 have no signed checkpoint" in text


async def test_r10_rewriting_from_the_first_record_leaves_no_checkpoint_and_fails(db_url, make_gateway, capsys) -> None:
    gw = await _trail(make_gateway, db_url)
    await _rewrite(gw, 1)
    code, text = await _verdict(_args(gw, db_url, witness=False), capsys)
    assert code == 1 and "BROKEN at record 1: unsigned tail: records 1..24 have no signed checkpoint" in text


@pytest.mark.parametrize("witness", [False, True])
async def test_r10_one_deleted_checkpoint_is_caught(db_url, make_gateway, capsys, witness) -> None:
    gw = await _trail(make_gateway, db_url)
    async with gw.db.session() as s:
        await s.execute(delete(CheckpointRow).where(CheckpointRow.seq == 10))
    await gw.db.close()
    code, text = await _verdict(_args(gw, db_url, witness=witness), capsys)
    assert code == 1
    if witness:
        assert "BROKEN at record 10: checkpoint deleted: the witness holds checkpoint 10 (line 2" in text
    else:
        assert "BROKEN at record 6: unsigned span: records 6..14 have no signed checkpoint" in text


@pytest.mark.parametrize("witness", [False, True])
async def test_r10_cut_tail_with_its_checkpoints_is_caught(db_url, make_gateway, capsys, witness) -> None:
    gw = await _trail(make_gateway, db_url)
    await _cut(gw, 12)  # what is left looks like a trail whose gateway crashed after record 12
    code, text = await _verdict(_args(gw, db_url, witness=witness, stopped=not witness), capsys)
    assert code == 1
    if witness:
        assert "BROKEN at record 13: truncated: the witness holds checkpoint 15 (line 3" in text
        assert "the trail ends at record 12" in text
    else:  # the operator knows the gateway stopped in an orderly way
        assert "BROKEN at record 11: no clean stop: the trail ends at record 12" in text


async def test_r10_unsigned_tail_within_one_interval_is_not_a_tamper_alarm(db_url, make_gateway, capsys) -> None:
    """A crash leaves up to one interval unsigned; without --stopped that is reported, not failed."""
    gw = await _trail(make_gateway, db_url)
    await _cut(gw, 22)
    code, text = await _verdict(_args(gw, db_url, witness=False), capsys)
    assert code == 0, text
    assert "records 21..22 are not signed yet" in text


@pytest.mark.parametrize("edit", ["forged_head", "removed_line", "not_json"])
async def test_r10_witness_file_rewrite_is_caught(db_url, make_gateway, capsys, edit: str) -> None:
    gw = await _trail(make_gateway, db_url)
    path = _witness_file(gw)
    lines = path.read_text().splitlines()
    if edit == "forged_head":  # a witness made to agree with a re-hashed chain, without the key
        await _rewrite(gw, 12)
        async with gw.db.session() as s:
            heads = {r.seq: r.hash for r in await s.scalars(select(AuditRow))}
        await gw.db.close()
        entries = [json.loads(line) for line in lines[:2]]
        for seq in (15, 20, 24):
            entries.append({**json.loads(lines[len(entries)]), "hash": heads[seq]})
        lines = [json.dumps(e, sort_keys=True, separators=(",", ":")) for e in entries]
    elif edit == "removed_line":
        del lines[1]
    else:
        lines[2] = lines[2][:-9]
    path.write_text("\n".join(lines) + "\n")
    code, text = await _verdict(_args(gw, db_url), capsys)
    assert code == 1
    expected = {"forged_head": "BROKEN at record 15: witness rewritten: line 3 (checkpoint 15) has a bad signature",
                "removed_line": "BROKEN at record 10: witness incomplete: checkpoint 10 is signed in the database "
                                "but not in the witness, which goes on to 24",
                "not_json": "BROKEN: witness rewritten"}[edit]
    assert expected in text
    if edit == "not_json":
        assert "line 3: not JSON" in text
