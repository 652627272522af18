"""Shared fixtures: a running gateway on loopback, and the databases the tests run against.

PostgreSQL comes from ``VSGW_TEST_PG_URL`` (``scripts/test.sh`` starts a throwaway cluster);
without it the PostgreSQL variants fail loudly rather than pass quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import os
import socket
import uuid
from typing import Any

from hypothesis import settings
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import Gateway
from gateway.config import Config
from gateway.storage import Database

# Property tests replay the same examples on every run (a CI failure can be reproduced; a run never
# fails by the luck of the draw); ``--hypothesis-profile=explore`` draws new ones while developing.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile("repeatable")

TOKEN = "test-token-7f3a"
PG_URL = os.environ.get("VSGW_TEST_PG_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # noqa: ANN001
    """Each storage test runs on the embedded SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'vsgw.db'}"
    if not PG_URL:
        pytest.fail("VSGW_TEST_PG_URL is not set: run the suite through scripts/test.sh (make test)")
    return request.getfixturevalue("pg_database")


@pytest.fixture(scope="session")
def pg_created() -> Iterator[list[str]]:
    """Test databases are dropped at the end of the session, not of each test: a gateway a test
    started may still write while it stops, whatever the order its fixtures are torn down in."""
    names: list[str] = []
    yield names

    async def drop() -> None:
        admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    if names:
        asyncio.run(drop())


@pytest_asyncio.fixture
async def pg_database(pg_created: list[str]) -> str:
    """A fresh PostgreSQL database per test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    pg_created.append(name)
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}"


@pytest_asyncio.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.migrate()
    try:
        yield db
    finally:
        await db.close()


def gateway_config(tmp_path, **sections: Any) -> Config:  # noqa: ANN001
    raw: dict[str, Any] = {
        "node": {"data_dir": str(tmp_path / "data"), "name": "test-node"},
        "http": {"port": 0, "tokens": [TOKEN]},
        "media": {"linger": 0.5},
    }
    for name, value in sections.items():
        if isinstance(value, dict):
            raw.setdefault(name, {}).update(value)
        else:
            raw[name] = value
    return Config(raw, env={})


@pytest_asyncio.fixture
async def make_gateway(tmp_path) -> AsyncIterator[Callable[..., Any]]:  # noqa: ANN001
    """``gw = await make_gateway(cameras=[...], storage={"url": ...})`` — started, stopped after."""
    started: list[Gateway] = []

    async def make(**sections: Any) -> Gateway:
        gw = Gateway(gateway_config(tmp_path / f"gw{len(started)}", **sections))
        await gw.start()
        started.append(gw)
        return gw

    yield make
    for gw in reversed(started):
        await gw.stop()


def free_port() -> int:
    """A loopback TCP port nobody holds right now (for servers that need a fixed address up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def synthetic(cid: str, **kw: Any) -> dict[str, Any]:
    """A small, cheap synthetic camera for tests."""
    return {"id": cid, "kind": "synthetic", "name": kw.pop("name", cid), "width": 320, "height": 240,
            "fps": 25, "gop": 25, "bitrate": 300_000, **kw}


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
