"""R10, R18: the witness at run time. It survives a restart and keeps appending; checkpoints are
published to the witness URL best-effort (a dead receiver costs counted failures, never a record);
and a real ``vsgw serve`` killed with SIGKILL leaves a trail that verifies (its unsigned tail is
within one interval and nothing witnessed is missing), which a restart then carries on and closes."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.app import Gateway
from gateway.audit.cli import _verify
from gateway.config import Config

from .conftest import TOKEN, free_port, gateway_config

pytestmark = pytest.mark.asyncio
EVERY = 5


def _args(data: Path, db_url: str, stopped: bool = False) -> argparse.Namespace:
    return argparse.Namespace(config=None, db=db_url, key=str(data / "keys" / "audit-ed25519.pub"),
                              witness=str(data / "audit-witness.jsonl"), stopped=stopped)


async def _records(gw: Gateway, n: int, what: str) -> list[int]:
    return list(await asyncio.gather(*(gw.audit.record(actor="user:op", action=what, resource=f"camera:c-{i}",
                                                       decision="allow") for i in range(n))))


async def test_r10_witness_survives_a_restart_and_keeps_appending(db_url, tmp_path, capsys) -> None:
    config = gateway_config(tmp_path, storage={"url": db_url}, audit={"checkpoint_every": EVERY})
    data = Path(tmp_path / "data")
    first = Gateway(config)
    await first.start()
    await _records(first, 12, "run.one")
    await first.stop()
    before = (data / "audit-witness.jsonl").read_bytes()
    assert [json.loads(line)["seq"] for line in before.splitlines()] == [5, 10, 13]

    second = Gateway(gateway_config(tmp_path, storage={"url": db_url}, audit={"checkpoint_every": EVERY}))
    await second.start()
    assert (await _records(second, 8, "run.two"))[0] == 14  # the chain runs on from the first run's stop
    await second.stop()
    after = (data / "audit-witness.jsonl").read_bytes()
    assert after.startswith(before)
    assert [json.loads(line)["seq"] for line in after.splitlines()] == [5, 10, 13, 18, 22]
    assert second.metrics.value("vsgw_audit_witness_lines_total") == 2
    assert await _verify(_args(data, db_url, stopped=True)) == 0
    assert "5 signed checkpoints, 5 witnessed" in capsys.readouterr().out


async def test_r10_checkpoints_are_published_to_the_witness_url(tmp_path) -> None:
    received: list[bytes] = []

    async def take(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/witness", take)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        gw = Gateway(gateway_config(tmp_path, audit={"checkpoint_every": EVERY,
                                                     "witness_url": f"http://127.0.0.1:{port}/witness"}))
        await gw.start()
        await _records(gw, 11, "published")
        await gw.stop()  # gives the publisher one timeout to drain
    finally:
        await runner.cleanup()
    lines = (tmp_path / "data" / "audit-witness.jsonl").read_bytes().splitlines(keepends=True)
    assert received == lines and len(lines) == 3
    assert gw.metrics.value("vsgw_audit_witness_published_total") == 3


async def test_r10_a_dead_witness_url_costs_counted_failures_not_records(tmp_path) -> None:
    gw = Gateway(gateway_config(tmp_path, audit={"checkpoint_every": EVERY, "witness_timeout": 2.0,
                                                 "witness_url": f"http://127.0.0.1:{free_port()}/witness"}))
    await gw.start()
    seqs = await _records(gw, 11, "unpublished")
    await gw.stop()
    assert sorted(seqs) == list(range(1, 12))
    assert gw.metrics.value("vsgw_audit_witness_publish_failures_total", reason="unreachable") == 3
    assert len((tmp_path / "data" / "audit-witness.jsonl").read_text().splitlines()) == 3


CONFIG = """
[node]
data_dir = "{data}"
[http]
port = 0
tokens = ["{token}"]
[audit]
checkpoint_every = {every}
"""


async def test_r10_kill_9_leaves_a_trail_that_verifies_and_a_restart_closes(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG.format(data=data, token=TOKEN, every=EVERY))
    db_url = f"sqlite+aiosqlite:///{data / 'vsgw.db'}"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "serve", "-c", str(cfg),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        port = None
        while port is None:  # the log line that says it is serving names the port
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, "vsgw serve exited before serving"
            if found := re.search(rb"HTTP on http://127\.0\.0\.1:(\d+)", line):
                port = int(found.group(1))
        drain = asyncio.create_task(proc.stderr.read())
        async with aiohttp.ClientSession() as http:
            for i in range(13):  # every refused login is an audit record, durable before the answer
                async with http.post(f"http://127.0.0.1:{port}/api/login",
                                     json={"username": f"nobody-{i}", "password": "wrong"}) as resp:
                    assert resp.status == 401
    finally:
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    await drain
    assert await _verify(_args(data, db_url)) == 0
    out = capsys.readouterr()
    assert "records 11..13 are not signed yet" in out.out
    assert await _verify(_args(data, db_url, stopped=True)) == 1  # a crash is not an orderly stop
    assert "no clean stop" in capsys.readouterr().err

    gw = Gateway(Config.load(cfg, env={}))
    await gw.start()
    assert (await _records(gw, 3, "after.crash"))[0] == 14
    await gw.stop()
    assert await _verify(_args(data, db_url, stopped=True)) == 0
    lines = [json.loads(line) for line in (data / "audit-witness.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in lines] == [5, 10, 15, 17] and lines[-1]["kind"] == "stop"
