"""The public catalogue of systems that must connect (R3, WX 21), built from an explicit
allow-list projection so no confidential field (R4) can reach it: camera rows are never read,
only system, site and unit columns named in :data:`PUBLIC_FIELDS`.

A new version is recorded whenever the compiled content changes; each carries its date.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from . import csvout
from .models import CameraRow, PublicationRow, SiteRow, SystemRow, UnitRow
from .registry import now
from .sites import category

if TYPE_CHECKING:
    from .registry import Registry

PUBLIC_FIELDS = ("site_id", "site_name", "category", "category_zh", "category_en", "district", "unit",
                 "system_id", "system_name", "status")
STATUSES = ("connected", "built_not_connected", "not_built", "decommissioned")


@dataclass(frozen=True, slots=True)
class Publication:
    version: int
    published_at: datetime
    rows: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "published_at": self.published_at.isoformat(), "fields": list(PUBLIC_FIELDS),
                "systems": self.rows}

    def to_csv(self) -> str:
        """Each row carries the catalogue version and publication date, so a saved file says which it is."""
        meta = {"catalogue_version": self.version, "published_at": self.published_at.isoformat()}
        return csvout.to_csv((*meta, *PUBLIC_FIELDS), ({**meta, **r} for r in self.rows))


def connection_status(system: SystemRow | None) -> str:
    if system is None or system.status == "planned":
        return "not_built"
    if system.status == "decommissioned":
        return "decommissioned"
    return "connected" if system.status == "connected" else "built_not_connected"


class Publisher:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._current: Publication | None = None
        self._generation = -1
        self._lock = asyncio.Lock()

    async def current(self) -> Publication:
        """The latest publication; recompiled (and re-versioned if changed) after registry writes."""
        async with self._lock:
            if self._current is None or self._generation != self.registry.generation:
                generation = self.registry.generation
                self._current = await self._publish(await self.compile())
                self._generation = generation
            return self._current

    async def compile(self) -> list[dict[str, Any]]:
        """Mandated sites (built or not) and registered systems that must connect (site-linked,
        government-funded, or with a camera at a mandatory site category)."""
        db = self.registry.gw.db
        async with db.session() as s:
            units = {u.id: u.name for u in await s.scalars(select(UnitRow))}
            sites = {x.id: x for x in await s.scalars(select(SiteRow))}
            unit_districts = dict((await s.execute(select(UnitRow.id, UnitRow.district))).all())
            systems = list(await s.scalars(select(SystemRow).order_by(SystemRow.id)))
            with_cameras = set(await s.scalars(select(CameraRow.system_id).distinct()))
        rows: list[dict[str, Any]] = []
        built = set()
        for sy in systems:
            site = sites.get(sy.site_id) if sy.site_id else None
            if site is None and sy.funding != "government" and sy.id not in with_cameras:
                continue
            if site is not None and sy.status != "decommissioned":
                built.add(site.id)
            rows.append(_row(site, units.get(sy.unit_id, ""), site.district if site else unit_districts.get(sy.unit_id, ""),
                             sy.id, sy.name, connection_status(sy)))
        listed = {r["site_id"] for r in rows}
        for site in sites.values():
            if site.id not in built and site.id not in listed:
                rows.append(_row(site, units.get(site.unit_id, ""), site.district, "", "", "not_built"))
        rows.sort(key=lambda r: (r["district"], r["site_id"], r["system_id"]))
        return rows

    async def _publish(self, rows: list[dict[str, Any]]) -> Publication:
        digest = hashlib.sha256(json.dumps(rows, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
        async with self.registry.gw.db.session() as s:
            last = (await s.scalars(select(PublicationRow).order_by(PublicationRow.version.desc()).limit(1))).first()
            if last is not None and last.digest == digest:
                return Publication(last.version, last.published_at, rows)
            row = PublicationRow(version=(last.version + 1) if last else 1, published_at=now(), digest=digest, body=rows)
            s.add(row)
        return Publication(row.version, row.published_at, rows)


def _row(site: SiteRow | None, unit: str, district: str, system_id: str, system_name: str,
         status: str) -> dict[str, Any]:
    """The allow-list projection: exactly :data:`PUBLIC_FIELDS`, nothing read from cameras."""
    cat = category(site.category) if site else None
    out = {"site_id": site.id if site else "", "site_name": site.name if site else "",
           "category": cat.code if cat else "", "category_zh": cat.zh if cat else "", "category_en": cat.en if cat else "",
           "district": district, "unit": unit, "system_id": system_id, "system_name": system_name, "status": status}
    assert tuple(out) == PUBLIC_FIELDS
    return out
