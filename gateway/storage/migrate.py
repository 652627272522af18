"""Schema migrations, one ordered history per part of the gateway.

Each part (core, catalog, policy, audit, recording…) owns its tables and registers numbered
steps with :func:`migration`; ``schema_versions`` records what ran. Parts evolve their schemas
independently, which a single linear revision chain would not let them do without conflicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import importlib

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, select
from sqlalchemy.engine import Connection

Step = Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class Migration:
    part: str
    version: int
    description: str
    step: Step


MIGRATIONS: list[Migration] = []

# Modules whose import registers migrations; parts append themselves here.
MIGRATION_MODULES: list[str] = [
    "gateway.storage.core", "gateway.recording.index", "gateway.audit.chain", "gateway.identity.models",
    "gateway.policy.grants",
    "catalog.models", "adapters.gb28181.store",
]

_meta = MetaData()
schema_versions = Table(
    "schema_versions",
    _meta,
    Column("part", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


def migration(part: str, version: int, description: str) -> Callable[[Step], Step]:
    def register(step: Step) -> Step:
        MIGRATIONS.append(Migration(part, version, description, step))
        return step

    return register


def create_tables(*tables: Table) -> Step:
    """The usual first step: create these tables as declared."""

    def step(conn: Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return step


async def run_migrations(db) -> list[str]:  # noqa: ANN001 - Database (import cycle)
    """Apply pending steps in (part, version) order; returns what ran."""
    for name in MIGRATION_MODULES:
        importlib.import_module(name)
    ran: list[str] = []
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: _meta.create_all(c, checkfirst=True))
        done = {(p, v) for p, v in (await conn.execute(select(schema_versions.c.part, schema_versions.c.version)))}
        for m in sorted(MIGRATIONS, key=lambda m: (m.part, m.version)):
            if (m.part, m.version) in done:
                continue
            await conn.run_sync(m.step)
            await conn.execute(schema_versions.insert().values(part=m.part, version=m.version, description=m.description))
            ran.append(f"{m.part}:{m.version} {m.description}")
    return ran
