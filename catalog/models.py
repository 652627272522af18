"""Registry tables: units, mandated sites, systems, cameras, archived documents, publications.

Rows are never deleted (R8): a dismantled system or camera changes status and keeps its record.
Confidential columns (R4) are listed in :data:`CONFIDENTIAL`; the public projection never reads them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage import Base
from gateway.storage.migrate import create_tables, migration

UNIT_TYPES = ("government", "department", "enterprise", "institution", "other")
FUNDING = ("government", "non_government")
SYSTEM_STATUS = ("planned", "built", "accepted", "filed", "connected", "decommissioned")
DOC_KINDS = ("design", "construction", "acceptance", "maintenance")
# R4 (WX 26, WX 29): installation location, address code, device type, design documents.
CONFIDENTIAL = {"camera": ("installation_location", "address_code", "device_type"), "document": ("design",)}


class UnitRow(Base):
    __tablename__ = "catalog_units"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SiteRow(Base):
    """A place the regulations say must have a system (R5); the catalogue lists it even unbuilt."""

    __tablename__ = "catalog_sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[str] = mapped_column(ForeignKey("catalog_units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SystemRow(Base):
    __tablename__ = "catalog_systems"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[str] = mapped_column(ForeignKey("catalog_units.id"), index=True)
    operator_unit_id: Mapped[str | None] = mapped_column(ForeignKey("catalog_units.id"), nullable=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("catalog_sites.id"), nullable=True, index=True)
    funding: Mapped[str] = mapped_column(String(16))
    security_level: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    accepted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    pre_existing: Mapped[bool] = mapped_column(Boolean, default=False)
    filed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    filing_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notice_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    dismantled_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CameraRow(Base):
    __tablename__ = "catalog_cameras"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), default="")  # casefolded name: indexed prefix search
    system_id: Mapped[str] = mapped_column(ForeignKey("catalog_systems.id"), index=True)
    site_category: Mapped[str] = mapped_column(String(32))
    installation_location: Mapped[str] = mapped_column(Text)  # confidential (R4)
    address_code: Mapped[str] = mapped_column(String(32))  # confidential (R4)
    device_type: Mapped[str] = mapped_column(String(100))  # confidential (R4)
    signage: Mapped[bool] = mapped_column(Boolean, default=False)
    privacy_masks: Mapped[list] = mapped_column(JSON, default=list)
    channel_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | decommissioned
    bound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DocumentRow(Base):
    """Design/construction/acceptance records archived with their hash (R7, WX 16)."""

    __tablename__ = "catalog_documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("catalog_systems.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    archived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PublicationRow(Base):
    """One published version of the public catalogue (R3): its date and content digest."""

    __tablename__ = "catalog_publications"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[list] = mapped_column(JSON)


SEARCH_INDEXES = (Index("ix_catalog_cameras_name_key", CameraRow.name_key),
                  Index("ix_catalog_cameras_category_system", CameraRow.site_category, CameraRow.system_id))


@migration("catalog", 2, "cameras.name_key and search indexes")
def _name_key(conn: Connection) -> None:
    if "name_key" not in {c["name"] for c in inspect(conn).get_columns("catalog_cameras")}:
        conn.execute(text("ALTER TABLE catalog_cameras ADD COLUMN name_key VARCHAR(200) NOT NULL DEFAULT ''"))
        conn.execute(text("UPDATE catalog_cameras SET name_key = lower(name)"))
    for index in SEARCH_INDEXES:
        index.create(conn, checkfirst=True)


migration("catalog", 1, "units, sites, systems, cameras, documents, publications")(create_tables(
    UnitRow.__table__, SiteRow.__table__, SystemRow.__table__, CameraRow.__table__, DocumentRow.__table__,
    PublicationRow.__table__,
))
