"""Bound channel id → policy :class:`Resource`, held in memory: the gate's resolver runs on every
decision, so it never touches the database. The registry refreshes it after each write."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, select

from gateway.policy import Resource
from gateway.storage import Database

from .models import CameraRow, SiteRow, SystemRow, UnitRow


class ChannelResources(dict[str, Resource]):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    def resolve(self, channel_id: str) -> Resource:
        """``gw.resource_resolver``: an unbound channel is a bare camera resource."""
        return self.get(channel_id) or Resource("camera", channel_id)

    async def load(self) -> None:
        async with self.db.session() as s:
            rows = (await s.execute(_bound_query())).all()
        self.clear()
        self.update({r[0].channel_id: _resource(*r) for r in rows})

    async def refresh(self, *, system_id: str | None = None, camera_ids: Iterable[str] = (),
                      unbound: Iterable[str] = ()) -> None:
        """Re-read one system's cameras, or some cameras; drop released channel ids."""
        for cid in unbound:
            self.pop(cid, None)
        q = _bound_query()
        ids = list(camera_ids)
        if system_id is not None:
            q = q.where(CameraRow.system_id == system_id)
        elif ids:
            q = q.where(CameraRow.id.in_(ids))
        else:
            return
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        if system_id is not None:
            for cid in [c for c, r in self.items() if r.attrs.get("system") == system_id]:
                del self[cid]
        for r in rows:
            self[r[0].channel_id] = _resource(*r)


def _bound_query() -> Select[Any]:
    return (select(CameraRow, SystemRow, UnitRow.district, SiteRow.district)
            .join(SystemRow, CameraRow.system_id == SystemRow.id)
            .join(UnitRow, SystemRow.unit_id == UnitRow.id)
            .outerjoin(SiteRow, SystemRow.site_id == SiteRow.id)
            .where(CameraRow.channel_id.isnot(None)))


def _resource(cam: CameraRow, system: SystemRow, unit_district: str, site_district: str | None) -> Resource:
    return Resource(
        kind="camera", id=cam.channel_id or cam.id, unit=system.unit_id, district=site_district or unit_district,
        security_level=system.security_level,
        attrs={"system": system.id, "camera": cam.id, "privacy_masks": [list(m) for m in cam.privacy_masks or []],
               "site_category": cam.site_category},
    )
