"""Catalog at city scale: 100,000 cameras in 2,000 systems (R3, R17).

Measures public catalogue generation (compile + publish, then JSON/CSV over HTTP), the compliance
report, and camera search p50/p99 over HTTP against the goal (p99 < 50 ms), with the same search
as one raw SQL statement on the same database beside it (the anchor: what the database alone costs).

    .venv/bin/python bench/catalog_scale.py                 # SQLite
    .venv/bin/python bench/catalog_scale.py --pg URL        # PostgreSQL too (a scratch database)
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, date, datetime
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import insert, text

from catalog.models import CameraRow, SiteRow, SystemRow, UnitRow
from gateway.app import Gateway
from gateway.config import Config

CAMERAS, SYSTEMS, UNITS = 100_000, 2_000, 40
TOKEN = "bench-token"
CATS = ["road", "square", "transport_hub", "school", "hospital", "market", "residential_entrance", "parking"]
GOAL_P99_MS = 50.0


async def populate(gw: Gateway) -> float:
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    rnd = random.Random(7)
    units = [dict(id=f"u{i:03}", name=f"Unit {i}", type="department", district=f"D{i % 8}", created_at=now)
             for i in range(UNITS)]
    sites = [dict(id=f"s{i:05}", name=f"Site {i}", category=CATS[i % len(CATS)], district=f"D{i % 8}",
                  unit_id=f"u{i % UNITS:03}", created_at=now) for i in range(SYSTEMS + 200)]
    status = ["planned", "built", "accepted", "filed", "connected", "connected", "connected"]
    systems = [dict(id=f"sys{i:05}", name=f"System {i}", unit_id=f"u{i % UNITS:03}", operator_unit_id=None,
                    site_id=f"s{i:05}", funding="government" if i % 3 else "non_government", security_level=i % 4,
                    status=status[i % len(status)], accepted_on=date(2024, 1 + i % 12, 1 + i % 28),
                    pre_existing=False, filed_on=date(2024, 12, 1) if i % 5 else None, filing_ref=None,
                    notice_on=None, dismantled_on=None, created_at=now, updated_at=now) for i in range(SYSTEMS)]
    async with gw.db.engine.begin() as conn:
        await conn.execute(insert(UnitRow), units)
        await conn.execute(insert(SiteRow), sites)
        await conn.execute(insert(SystemRow), systems)
        batch = []
        for i in range(CAMERAS):
            name = f"{rnd.choice(['North', 'South', 'East', 'West'])} gate {i}"
            batch.append(dict(id=f"cam{i:06}", name=name, name_key=name.lower(),
                              system_id=f"sys{i % SYSTEMS:05}", site_category=CATS[i % len(CATS)],
                              installation_location=f"pole {i}", address_code=f"3202{i:016}", device_type="IPC",
                              signage=bool(i % 10), privacy_masks=[], channel_id=None, status="active",
                              bound_at=None, last_seen=None, created_at=now, updated_at=now))
            if len(batch) == 10_000:
                await conn.execute(insert(CameraRow), batch)
                batch = []
    return time.perf_counter() - t0


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def run(url: str, label: str, data_dir: Path, searches: int) -> None:
    cfg = Config({"node": {"data_dir": str(data_dir)}, "http": {"port": 0, "tokens": [TOKEN]},
                  "storage": {"url": url}}, env={})
    gw = Gateway(cfg)
    await gw.start()
    try:
        fill = await populate(gw)
        part = gw.catalog  # type: ignore[attr-defined]
        part.registry.generation += 1
        t0 = time.perf_counter()
        rows = await part.publisher.compile()
        compile_s = time.perf_counter() - t0
        base, h = f"http://127.0.0.1:{gw.http_port}", {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as s:
            t0 = time.perf_counter()
            async with s.get(base + "/catalogue.json") as r:
                body = await r.read()
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            async with s.get(base + "/catalogue.csv") as r:
                await r.read()
            warm_csv = time.perf_counter() - t0
            t0 = time.perf_counter()
            async with s.get(base + "/api/catalog/compliance", headers=h) as r:
                findings = len((await r.json())["findings"])
            compliance_s = time.perf_counter() - t0

            rnd = random.Random(1)
            queries = []
            for i in range(searches):
                k = i % 4
                queries.append({"q": f"{rnd.choice(['north', 'South'])} gate {rnd.randrange(1000)}"} if k == 0 else
                               {"system_id": f"sys{rnd.randrange(SYSTEMS):05}"} if k == 1 else
                               {"q": f"cam0{rnd.randrange(10)}{rnd.randrange(10)}"} if k == 2 else
                               {"unit_id": f"u{rnd.randrange(UNITS):03}", "site_category": rnd.choice(CATS)})
            for q in queries[:20]:  # warm-up
                async with s.get(base + "/api/catalog/cameras", params=q, headers=h) as r:
                    await r.read()
            http_ms = []
            for q in queries:
                t0 = time.perf_counter()
                async with s.get(base + "/api/catalog/cameras", params=q, headers=h) as r:
                    assert r.status == 200, await r.text()
                    await r.read()
                http_ms.append((time.perf_counter() - t0) * 1000)
        sql_ms = []
        async with gw.db.engine.connect() as conn:  # the same search as one hand-written statement
            stmt = text("SELECT c.*, s.* FROM catalog_cameras c JOIN catalog_systems s ON c.system_id = s.id "
                        "WHERE c.id >= :p AND c.id < :p || 'z' OR c.name_key >= :n AND c.name_key < :n || 'z' "
                        "ORDER BY c.id LIMIT 51")
            for i in range(searches):
                t0 = time.perf_counter()
                (await conn.execute(stmt, {"p": f"cam0{i % 100:02}", "n": f"north gate {i % 1000}"})).all()
                sql_ms.append((time.perf_counter() - t0) * 1000)
        p99 = pct(http_ms, 99)
        print(f"\n== {label}: {CAMERAS:,} cameras, {SYSTEMS:,} systems, {UNITS} units ==")
        print(f"  populate (bulk insert)           {fill:8.2f} s")
        print(f"  catalogue compile                {compile_s * 1000:8.1f} ms  ({len(rows):,} rows)")
        print(f"  /catalogue.json first (publish)  {cold * 1000:8.1f} ms  ({len(body) / 1e6:.2f} MB)")
        print(f"  /catalogue.csv (cached)          {warm_csv * 1000:8.1f} ms")
        print(f"  compliance report (JSON)         {compliance_s * 1000:8.1f} ms  ({findings:,} findings)")
        print(f"  camera search over HTTP  n={len(http_ms)}  p50 {pct(http_ms, 50):6.2f} ms  p99 {p99:6.2f} ms  "
              f"mean {statistics.mean(http_ms):6.2f} ms")
        print(f"  anchor: raw SQL search   n={len(sql_ms)}  p50 {pct(sql_ms, 50):6.2f} ms  p99 {pct(sql_ms, 99):6.2f} ms")
        print(f"  ratio HTTP/raw SQL p50 {pct(http_ms, 50) / pct(sql_ms, 50):5.1f}x; p99 vs goal {GOAL_P99_MS:.0f} ms: "
              f"{p99 / GOAL_P99_MS:4.2f} ({'met' if p99 < GOAL_P99_MS else 'MISSED'})")
    finally:
        await gw.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", help="postgresql+asyncpg://… of an EMPTY scratch database")
    ap.add_argument("--searches", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await run(f"sqlite+aiosqlite:///{tmp}/bench.db", "SQLite", Path(tmp, "sqlite"), args.searches)
        if args.pg:
            await run(args.pg, "PostgreSQL", Path(tmp, "pg"), args.searches)


if __name__ == "__main__":
    asyncio.run(main())
