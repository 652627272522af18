"""The registry service (R4–R8): units, mandated sites, systems, cameras; filing, documents,
decommission, channel binding. Every write refreshes the channel → Resource cache it owns.

Every write is validated and authorised (``Action.MANAGE`` on the owning unit, at the record's
security level) *before* its transaction opens, so a refused request changes nothing. Nothing is
ever deleted (R8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from gateway.policy import Action, Resource, Subject, subject_access

from . import schema
from .models import DOC_KINDS, CameraRow, DocumentRow, SiteRow, SystemRow, UnitRow
from .resources import ChannelResources
from .rules import CityRules
from .schema import FieldError, Invalid

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
ROWS = {"unit": UnitRow, "site": SiteRow, "system": SystemRow, "camera": CameraRow}
CHECKS = {"unit": schema.unit, "site": schema.site, "system": schema.system, "camera": schema.camera}


class NotFound(LookupError):
    def __init__(self, kind: str, ident: str) -> None:
        self.kind, self.ident = kind, ident
        super().__init__(f"no {kind} {ident!r}")


class Forbidden(PermissionError):
    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason, self.field = reason, field
        super().__init__(reason)


class Conflict(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


@dataclass(slots=True)
class Pending:
    """A validated record ready to write: its row and the unit that must allow it."""

    kind: str
    row: Any
    unit: str


def now() -> datetime:
    return datetime.now(UTC)


class Registry:
    def __init__(self, gw: Gateway, rules: CityRules) -> None:
        self.gw, self.rules = gw, rules
        self.generation = 0  # bumped on every write; publications and caches key on it
        self.resources = ChannelResources(gw.db)  # bound channel id → Resource (the resolver's hot path)

    # -- authorisation -------------------------------------------------------------------
    async def allow(self, subject: Subject, kind: str, ident: str, unit: str | None,
                    action: Action = Action.MANAGE, quiet: bool = False, level: int = 0) -> bool:
        resource = Resource(kind, ident, unit=unit, security_level=level)
        decision = await self.gw.policy.authorize(subject_access(subject, action, resource, "http", quiet=quiet))
        return decision.allowed

    async def require(self, subject: Subject, kind: str, ident: str, unit: str | None, level: int = 0) -> None:
        """MANAGE at the record's security level: a write needs the clearance a read of its
        confidential fields needs (R4). The gate's reason never names a field's value."""
        resource = Resource(kind, ident, unit=unit, security_level=level)
        decision = await self.gw.policy.authorize(subject_access(subject, Action.MANAGE, resource, "http"))
        if not decision:
            raise Forbidden(decision.reason)

    async def level_of(self, kind: str, row: Any) -> int:
        """A record's security level: a system's own, a camera's system's; units and sites have none."""
        if kind == "system":
            return row.security_level
        if kind == "camera":
            return (await self.get("system", row.system_id)).security_level
        return 0

    # -- reads ---------------------------------------------------------------------------
    async def get(self, kind: str, ident: str) -> Any:
        async with self.gw.db.session() as s:
            row = await s.get(ROWS[kind], ident)
        if row is None:
            raise NotFound(kind, ident)
        return row

    async def list(self, kind: str, unit_id: str | None = None) -> list[Any]:
        model = ROWS[kind]
        q = select(model).order_by(model.id)
        if unit_id and kind in ("site", "system"):
            q = q.where(model.unit_id == unit_id)
        async with self.gw.db.session() as s:
            return list(await s.scalars(q))

    async def unit_of(self, kind: str, row: Any) -> str:
        if kind == "unit":
            return row.id
        if kind in ("site", "system"):
            return row.unit_id
        return (await self.get("system", row.system_id)).unit_id

    async def search_cameras(self, *, q: str = "", system_id: str | None = None, unit_id: str | None = None,
                             site_category: str | None = None, bound: bool | None = None,
                             limit: int = 50, offset: int = 0) -> tuple[list[tuple[CameraRow, SystemRow]], bool]:
        """Case-insensitive prefix search on camera id or name, with filters; never on confidential
        fields (R4). Every condition can use an index, so the cost stays flat at 100,000 cameras.
        Returns one page and whether more follow."""
        stmt = select(CameraRow, SystemRow).join(SystemRow, CameraRow.system_id == SystemRow.id)
        conds = []
        if q:
            conds.append(or_(_prefix(CameraRow.id, q), _prefix(CameraRow.name_key, q.lower())))
        if system_id:
            conds.append(CameraRow.system_id == system_id)
        if unit_id:
            conds.append(CameraRow.system_id.in_(select(SystemRow.id).where(SystemRow.unit_id == unit_id)))
        if site_category:
            conds.append(CameraRow.site_category == site_category)
        if bound is not None:
            conds.append(CameraRow.channel_id.isnot(None) if bound else CameraRow.channel_id.is_(None))
        async with self.gw.db.session() as s:
            rows = (await s.execute(stmt.where(*conds).order_by(CameraRow.id).limit(limit + 1).offset(offset))).all()
        return [(r[0], r[1]) for r in rows[:limit]], len(rows) > limit

    # -- planning a write (validation + references + authorisation, no transaction) ----------
    async def plan(self, subject: Subject, kind: str, data: dict[str, Any],
                   pending: dict[tuple[str, str], Any] | None = None) -> Pending:
        """Validate one new record against the database and earlier ``pending`` records."""
        clean = CHECKS[kind](data)
        pending = pending if pending is not None else {}
        errors: list[FieldError] = []

        async def ref(field: str, target: str) -> Any:
            ident = clean.get(field)
            if ident is None:
                return None
            row = pending.get((target, ident)) or await self._find(target, ident)
            if row is None:
                errors.append(FieldError(field, f"no such {target}", "not_found"))
            return row

        if (kind, clean["id"]) in pending or await self._find(kind, clean["id"]) is not None:
            errors.append(FieldError("id", f"a {kind} with this id already exists", "duplicate"))
        t = now()
        unit, level = "", 0
        if kind == "unit":
            row: Any = UnitRow(created_at=t, **clean)
            unit = row.id
        elif kind == "site":
            await ref("unit_id", "unit")
            row = SiteRow(created_at=t, **clean)
            unit = row.unit_id
        elif kind == "system":
            await ref("unit_id", "unit")
            await ref("operator_unit_id", "unit")
            await ref("site_id", "site")
            clean.setdefault("status", "planned")
            if clean["status"] in ("accepted", "filed", "connected") and clean.get("accepted_on") is None:
                errors.append(FieldError("accepted_on", "required once a system is accepted", "required"))
            row = SystemRow(created_at=t, updated_at=t, **clean)
            unit, level = row.unit_id, clean.get("security_level", 0)
        else:
            system = await ref("system_id", "system")
            if system is not None and system.status == "decommissioned":
                errors.append(FieldError("system_id", "the system is decommissioned", "decommissioned"))
            if clean.get("channel_id"):
                in_file = any(k[0] == "camera" and r.channel_id == clean["channel_id"] for k, r in pending.items())
                if in_file or await self._bound_to(clean["channel_id"]) is not None:
                    errors.append(FieldError("channel_id", "already bound to another camera", "duplicate"))
            clean.setdefault("privacy_masks", [])
            row = CameraRow(created_at=t, updated_at=t, bound_at=t if clean.get("channel_id") else None,
                            name_key=clean["name"].lower(), **clean)
            unit, level = (system.unit_id, system.security_level) if system is not None else ("", 0)
        if errors:
            raise Invalid(errors)
        resource = Resource(kind, clean["id"], unit=unit, security_level=level)
        decision = await self.gw.policy.authorize(subject_access(subject, Action.MANAGE, resource, "http"))
        if not decision:
            raise Forbidden(decision.reason, "unit_id" if kind != "camera" else "system_id")
        return Pending(kind, row, unit)

    async def commit(self, subject: Subject, plans: list[Pending], action: str = "catalog.create") -> None:
        """Write planned records in one transaction: all or nothing."""
        try:
            async with self.gw.db.session() as s:
                for kind in ROWS:  # parents first: without ORM relationships the flush does not order tables
                    s.add_all([p.row for p in plans if p.kind == kind])
                    await s.flush()
                for p in plans:
                    if p.kind == "camera" and p.row.channel_id:
                        system = await s.get(SystemRow, p.row.system_id)
                        if system is not None and system.status in ("built", "accepted", "filed"):
                            system.status = "connected"
        except IntegrityError as exc:
            log.warning("catalog write conflict: %s", type(exc.orig).__name__)  # never the values (R4)
            raise Conflict("id", "conflicts with a record written meanwhile; retry") from None
        self.generation += 1
        await self.resources.refresh(camera_ids=[p.row.id for p in plans if p.kind == "camera" and p.row.channel_id])
        for p in plans:
            await self._audit(subject, action, f"{p.kind}:{p.row.id}")

    async def create(self, subject: Subject, kind: str, data: dict[str, Any]) -> Any:
        plan = await self.plan(subject, kind, data)
        await self.commit(subject, [plan])
        return plan.row

    # -- updates -------------------------------------------------------------------------
    async def update(self, subject: Subject, kind: str, ident: str, data: dict[str, Any]) -> Any:
        """Partial update; re-classifying a camera into a prohibited category is refused (R6).
        Authorised before the body is looked at, at the record's level and at any level it is raised to."""
        row = await self.get(kind, ident)
        unit = await self.unit_of(kind, row)
        level = await self.level_of(kind, row)
        await self.require(subject, kind, ident, unit, level)
        fixed = ("id", "system_id", "channel_id") if kind == "camera" else ("id",)
        if isinstance(data, dict) and (read_only := [f for f in fixed if f in data]):
            raise Invalid([FieldError(f, "cannot be changed here (channel: use the binding endpoint)", "read_only")
                           for f in read_only])
        clean = CHECKS[kind](data, partial=True)
        raised = max(level, clean.get("security_level") or 0) if kind == "system" else level
        if raised > level:
            await self.require(subject, kind, ident, unit, raised)
        for field, target in (("unit_id", "unit"), ("operator_unit_id", "unit"), ("site_id", "site")):
            if clean.get(field) and await self._find(target, clean[field]) is None:
                raise Invalid([FieldError(field, f"no such {target}", "not_found")])
        if kind == "system" and clean.get("unit_id") and clean["unit_id"] != unit:
            await self.require(subject, "unit", clean["unit_id"], clean["unit_id"], raised)
        if kind == "system" and row.status == "decommissioned":
            raise Conflict("status", "the system is decommissioned; its record is kept read-only (R8)")
        async with self.gw.db.session() as s:
            row = await s.get(ROWS[kind], ident)
            for k, v in clean.items():
                setattr(row, k, v)
            if kind == "camera" and "name" in clean:
                row.name_key = clean["name"].lower()
            if hasattr(row, "updated_at"):
                row.updated_at = now()
        self.generation += 1
        if kind == "camera":
            await self.resources.refresh(camera_ids=[ident])
        elif kind == "system":
            await self.resources.refresh(system_id=ident)
        await self._audit(subject, f"catalog.update.{kind}", f"{kind}:{ident}", fields=sorted(clean))
        return row

    async def record_filing(self, subject: Subject, system_id: str, data: dict[str, Any]) -> SystemRow:
        """R7: the filing (备案) with the police; filing makes an accepted system "filed"."""
        clean = schema.filing(data)
        row = await self.get("system", system_id)
        await self.require(subject, "system", system_id, row.unit_id, row.security_level)
        if row.accepted_on and clean["filed_on"] < row.accepted_on and not row.pre_existing:
            raise Invalid([FieldError("filed_on", "earlier than the acceptance date")])
        async with self.gw.db.session() as s:
            row = await s.get(SystemRow, system_id)
            row.filed_on, row.filing_ref, row.updated_at = clean["filed_on"], clean.get("filing_ref"), now()
            if row.status in ("built", "accepted"):
                row.status = "filed"
        self.generation += 1
        await self._audit(subject, "catalog.filing", f"system:{system_id}")
        return row

    async def add_document(self, subject: Subject, system_id: str, kind: str, name: str, content: bytes) -> DocumentRow:
        """R7 / WX 16: archive a design/construction/acceptance record with its SHA-256."""
        errors = []
        if kind not in DOC_KINDS:
            errors.append(FieldError("kind", f"expected one of {', '.join(DOC_KINDS)}"))
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            errors.append(FieldError("name", "expected a file name of 1-200 printable characters"))
        if not content:
            errors.append(FieldError("content", "the document is empty", "required"))
        if errors:
            raise Invalid(errors)
        system = await self.get("system", system_id)
        await self.require(subject, "system", system_id, system.unit_id, system.security_level)
        doc = DocumentRow(system_id=system_id, kind=kind, name=name, sha256=hashlib.sha256(content).hexdigest(),
                          size=len(content), content=content, archived_at=now())
        async with self.gw.db.session() as s:
            s.add(doc)
        await self._audit(subject, "catalog.document", f"system:{system_id}", kind=kind, sha256=doc.sha256)
        return doc

    async def documents(self, system_id: str) -> list[DocumentRow]:
        async with self.gw.db.session() as s:
            return list(await s.scalars(select(DocumentRow).where(DocumentRow.system_id == system_id)
                                        .order_by(DocumentRow.id)))

    async def document(self, system_id: str, doc_id: int) -> DocumentRow:
        async with self.gw.db.session() as s:
            doc = await s.get(DocumentRow, doc_id)
        if doc is None or doc.system_id != system_id:
            raise NotFound("document", str(doc_id))
        return doc

    async def decommission(self, subject: Subject, system_id: str, data: dict[str, Any]) -> SystemRow:
        """R8: record the notice and dismantling dates; the system, its cameras, documents and
        footage stay (status "decommissioned"); bindings are released so the channel id is free."""
        clean = schema.decommission(data)
        row = await self.get("system", system_id)
        await self.require(subject, "system", system_id, row.unit_id, row.security_level)
        async with self.gw.db.session() as s:
            row = await s.get(SystemRow, system_id)
            for k, v in clean.items():
                setattr(row, k, v)
            if row.dismantled_on is not None:
                row.status = "decommissioned"
                cams = await s.scalars(select(CameraRow).where(CameraRow.system_id == system_id))
                for cam in cams:
                    cam.status, cam.channel_id, cam.updated_at = "decommissioned", None, now()
            row.updated_at = now()
        self.generation += 1
        await self.resources.refresh(system_id=system_id)
        await self._audit(subject, "catalog.decommission", f"system:{system_id}", fields=sorted(clean))
        return row

    async def bind(self, subject: Subject, camera_id: str, channel_id: str | None) -> CameraRow:
        """Bind a registry camera to a live channel (GB/T 28181, RTSP, synthetic) or release it."""
        if channel_id is not None and (not isinstance(channel_id, str) or not schema.ID.match(channel_id)):
            raise Invalid([FieldError("channel_id", "expected a channel id of 1-64 letters, digits or _.:-")])
        cam = await self.get("camera", camera_id)
        system = await self.get("system", cam.system_id)
        await self.require(subject, "camera", camera_id, system.unit_id, system.security_level)
        if cam.status == "decommissioned" and channel_id:
            raise Conflict("camera", "the camera is decommissioned")
        if channel_id and channel_id not in self.gw.registry.channels:
            raise Invalid([FieldError("channel_id", "no live channel with this id", "not_found")])
        if channel_id and (other := await self._bound_to(channel_id)) is not None and other.id != camera_id:
            raise Conflict("channel_id", "already bound to another camera")
        old = cam.channel_id
        async with self.gw.db.session() as s:
            cam = await s.get(CameraRow, camera_id)
            cam.channel_id, cam.bound_at, cam.updated_at = channel_id, now() if channel_id else None, now()
            system = await s.get(SystemRow, cam.system_id)
            if channel_id and system.status in ("built", "accepted", "filed"):
                system.status = "connected"
        self.generation += 1
        await self.resources.refresh(camera_ids=[camera_id], unbound=[old] if old else [])
        await self._audit(subject, "catalog.bind", f"camera:{camera_id}", channel=channel_id)
        return cam

    async def seen(self, channel_id: str, at: datetime) -> None:
        """Liveness: the last time a bound channel was seen online (R17 offline findings)."""
        if channel_id not in self.resources:
            return
        async with self.gw.db.session() as s:
            cam = (await s.scalars(select(CameraRow).where(CameraRow.channel_id == channel_id))).first()
            if cam is not None:
                cam.last_seen = at

    # -- helpers -------------------------------------------------------------------------
    async def _find(self, kind: str, ident: str) -> Any:
        async with self.gw.db.session() as s:
            return await s.get(ROWS[kind], ident)

    async def _bound_to(self, channel_id: str) -> CameraRow | None:
        async with self.gw.db.session() as s:
            return (await s.scalars(select(CameraRow).where(CameraRow.channel_id == channel_id))).first()

    async def _audit(self, subject: Subject, action: str, resource: str, **extra: Any) -> None:
        """Who changed what; field *names* only, never confidential values (R4)."""
        await self.gw.audit.record(actor=subject.id, action=action, resource=resource, decision="done",
                                   address=subject.address, extra={k: v for k, v in extra.items() if v is not None})


def _prefix(column: Any, prefix: str) -> Any:
    """``column`` starts with ``prefix``: a range the index narrows, LIKE to be exact."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return and_(column >= prefix, column < prefix + "\U0010ffff", column.like(f"{like}%", escape="\\"))
