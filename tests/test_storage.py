"""Storage on SQLite and PostgreSQL: migrations run once, channels persist across restarts."""

from __future__ import annotations

from sqlalchemy import select

from adapters.base import Channel
from gateway.bus import LocalBus
from gateway.registry import ChannelRegistry
from gateway.storage import Database
from gateway.storage.core import ChannelRow


async def test_migrations_are_recorded_and_idempotent(db_url: str) -> None:
    db = Database(db_url)
    first = await db.migrate()
    again = await db.migrate()
    await db.close()
    assert any(step.startswith("core:1") for step in first)
    assert again == []


async def test_registry_persists_channels_and_state(database: Database) -> None:
    bus = LocalBus()
    events = bus.subscribe("channel.")
    reg = ChannelRegistry(database, bus)

    class Owner:
        kind = "test"

    reg.seen(Owner(), Channel("34020000001320000001", "路口 1", "gb28181", online=True, civil_code="340200"))
    reg.state("34020000001320000001", False, "keepalive timeout")
    await reg.flush()
    async with database.session() as s:
        row = (await s.scalars(select(ChannelRow))).one()
    assert (row.id, row.name, row.online, row.civil_code) == ("34020000001320000001", "路口 1", False, "340200")
    topics = [(await events.get()).topic for _ in range(3)]
    assert topics == ["channel.added", "channel.state", "channel.state"]
