"""Core tables: the channels adapters discovered (the registry's cameras bind to these)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base
from .migrate import create_tables, migration


class ChannelRow(Base):
    __tablename__ = "channels"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    adapter: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    ptz: Mapped[bool] = mapped_column(Boolean, default=False)
    codec: Mapped[str | None] = mapped_column(String(16), nullable=True)
    civil_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    parent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


migration("core", 1, "channels")(create_tables(ChannelRow.__table__))
