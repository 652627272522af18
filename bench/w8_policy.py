"""W8 (issue 7 benchmark): policy decisions per second, the capability check, and durable audit events
per second.

1. Decisions: build an ``AccessRequest`` (with its ``TimeWindow`` for recorded video, as every egress
   does per request) and ``TieredGate.decide`` it (in memory, no I/O: the path every egress takes)
   over a mix of subjects, actions and cameras with 200 live grants that carry footage ranges.
   Goal >= 200,000/s. And ``authorize`` of ``quiet=True`` list requests (built per call, minted,
   counted in aggregate, denies recorded): goal >= 50,000/s.
2. Capability: the added cost of ``require()`` where a reader or playback is opened, on a minted
   live decision and on a minted playback decision with its range, in microseconds per check.
3. Audit: ``ChainAudit.record`` from C concurrent tasks, each call returning only after its row is
   committed (group commit: one transaction per batch). Anchor side by side: the same rows with one
   commit per event (what a naive durable log does). Goal >= 5,000/s. SQLite and PostgreSQL.

    .venv/bin/python bench/w8_policy.py [--decisions 300000] [--events 5000] [--concurrency 200] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
import os
from pathlib import Path
import random
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from gateway.audit.chain import ChainAudit  # noqa: E402
from gateway.policy import (LIVE, PLAYBACK, RECORDED, AccessRequest, Action, Resource, Subject,  # noqa: E402
                            TimeWindow, require, subject_access)
from gateway.policy.gate import TieredGate  # noqa: E402
from gateway.policy.grants import Grant  # noqa: E402
from gateway.storage import Database  # noqa: E402


class NullAudit:
    async def record(self, **kw: object) -> None:
        return None


def decisions(n: int) -> tuple[float, float, float, float, float]:
    """(decide/s, authorize(quiet)/s, allowed share of the decide mix, require() µs live, require() µs playback)."""
    gate = TieredGate(NullAudit())
    now = datetime.now(UTC)
    subjects = [Subject(f"user:{i}", roles=frozenset({r}), unit=f"u{i % 5}", clearance=i % 4, tier=t)
                for i, (r, t) in enumerate([("wall_operator", "sharing"), ("police_officer", "police"),
                                            ("department_admin", "sharing"), ("relative", "sharing")] * 5)]
    for i in range(200):
        gate.grants[f"g{i}"] = Grant(f"g{i}", "retrieval" if i % 2 else "relative", frozenset({f"user:{i % 20}"}),
                                     frozenset({f"cam{i % 50}"}),
                                     frozenset({Action.VIEW_LIVE, Action.VIEW_PLAYBACK, Action.EXPORT}),
                                     now - timedelta(hours=24 + i % 24), now + timedelta(hours=1),
                                     now + timedelta(hours=1))
    cams = [Resource("camera", f"cam{i}", f"u{i % 5}", "d", i % 4) for i in range(50)]
    actions = list(Action)
    rng = random.Random(7)
    calls = []
    for _ in range(4096):  # recorded actions ask for an hour somewhere in the last two days
        action = rng.choice(actions)
        start = now - timedelta(minutes=rng.randrange(60, 48 * 60))
        calls.append((rng.choice(subjects), action, rng.choice(cams),
                      (start, start + timedelta(hours=1)) if action in RECORDED else None))
    allowed = 0
    t0 = time.perf_counter()
    for i in range(n):
        s, a, r, w = calls[i & 4095]
        allowed += gate.decide(AccessRequest(s, a, r, "http", w and TimeWindow(*w), now=now)).allowed
    pure = n / (time.perf_counter() - t0)

    async def quiet() -> float:
        op = Subject("user:op", roles=frozenset({"wall_operator"}), clearance=3)
        t = time.perf_counter()
        for i in range(n):  # level-3 cameras are denied; every decision is counted for the aggregate
            await gate.authorize(subject_access(op, Action.LIST, cams[i % 50], "http", quiet=True))
        await gate.flush()
        return n / (time.perf_counter() - t)

    async def minted() -> tuple:
        op = Subject("user:op", roles=frozenset({"wall_operator"}), clearance=3)
        footage = (now - timedelta(hours=2), now - timedelta(hours=1))
        live = await gate.authorize(AccessRequest(op, Action.VIEW_LIVE, cams[0], "whep"))
        playback = await gate.authorize(AccessRequest(op, Action.VIEW_PLAYBACK, cams[0], "http", TimeWindow(*footage)))
        assert live.is_capability and playback.is_capability
        return live, playback, footage

    rate = asyncio.run(quiet())
    live, playback, footage = asyncio.run(minted())
    checks = max(n, 100_000)
    t0 = time.perf_counter()
    for _ in range(checks):
        require(live, "cam0", LIVE)
    live_us = (time.perf_counter() - t0) / checks * 1e6
    t0 = time.perf_counter()
    for _ in range(checks):
        require(playback, "cam0", PLAYBACK, footage)
    playback_us = (time.perf_counter() - t0) / checks * 1e6
    return pure, rate, allowed / n, live_us, playback_us


async def audit_rate(url: str, events: int, concurrency: int, group: bool) -> float:
    db = Database(url)
    await db.migrate()
    sink = ChainAudit(db, Ed25519PrivateKey.generate())
    await sink.start()
    per_task = events // concurrency if group else events

    async def worker(w: int) -> None:
        for i in range(per_task):
            await sink.record(actor=f"user:{w}", action="view_live", resource=f"camera:cam{i % 50}",
                              decision="allow", reason="role wall_operator may view_live", address="10.0.0.1",
                              request_id=f"r{w}-{i}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency if group else 1)))
    rate = per_task * (concurrency if group else 1) / (time.perf_counter() - t0)
    await sink.stop()
    await db.close()
    return rate


async def fresh_pg(base_url: str, name: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return f"{base_url.rpartition('/')[0]}/{name}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--decisions", type=int, default=300_000)
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--naive-events", type=int, default=300, help="events for the one-commit-per-event anchor")
    p.add_argument("--pg", default=os.environ.get("VSGW_TEST_PG_URL", ""))
    args = p.parse_args()
    pure, quiet, share, live_us, playback_us = decisions(args.decisions)
    print(f"policy AccessRequest + decide()    {pure:12,.0f} /s   goal 200,000/s  ratio {pure / 200_000:5.1f}x"
          f"   ({share:.0%} of the mix allowed)")
    print(f"policy authorize(quiet) + audit    {quiet:12,.0f} /s   goal 50,000/s   ratio {quiet / 50_000:5.1f}x")
    per_decision = 1e6 / pure
    print(f"capability require() live          {live_us:12.3f} us  {live_us / per_decision:6.1%} of one decision")
    print(f"capability require() playback+span {playback_us:12.3f} us  {playback_us / per_decision:6.1%} of one decision")
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", lambda n: f"sqlite+aiosqlite:///{tmp}/{n}.db")]
        if args.pg:
            targets.append(("postgresql", None))
        for name, make in targets:
            async def url(n: str) -> str:
                return make(n) if make else await fresh_pg(args.pg, f"w8_{n}")
            group = asyncio.run(_rate(url, "group", args.events, args.concurrency, True))
            naive = asyncio.run(_rate(url, "naive", args.naive_events, 1, False))
            print(f"audit {name:10} group commit     {group:12,.0f} /s   goal  5,000/s   ratio {group / 5000:5.1f}x"
                  f"   vs one commit per event {naive:8,.0f} /s  ({group / naive:5.1f}x)")


async def _rate(url, tag: str, events: int, concurrency: int, group: bool) -> float:  # noqa: ANN001
    return await audit_rate(await url(tag), events, concurrency, group)


if __name__ == "__main__":
    main()
