"""Bulk CSV import (R5–R7): one file of units, sites, systems and cameras, one ``record`` column
saying which. Every row is checked first; any error → nothing is written and every error comes
back as (row, field, reason). Row numbers count the header as row 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from gateway.policy import Subject

from .registry import Forbidden, Pending
from .schema import FieldError, Invalid

if TYPE_CHECKING:
    from .registry import Registry

KINDS = ("unit", "site", "system", "camera")
ORDER = {k: i for i, k in enumerate(KINDS)}
MAX_ROWS = 200_000
COLUMNS = {
    "unit": ("id", "name", "type", "district"),
    "site": ("id", "name", "category", "district", "unit_id"),
    "system": ("id", "name", "unit_id", "operator_unit_id", "site_id", "funding", "security_level", "status",
               "accepted_on", "pre_existing"),
    "camera": ("id", "name", "system_id", "site_category", "installation_location", "address_code", "device_type",
               "signage", "privacy_masks", "channel_id"),
}


async def import_csv(registry: Registry, subject: Subject, text: str) -> dict[str, int]:
    """All-or-nothing; raises :class:`Invalid` with every row's errors."""
    try:
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        raw = list(reader)
    except csv.Error:
        raise Invalid([FieldError("file", "not a readable CSV file", row=1)]) from None
    if "record" not in header:
        raise Invalid([FieldError("record", "the header needs a 'record' column (unit, site, system or camera)", row=1)])
    if len(raw) > MAX_ROWS:
        raise Invalid([FieldError("file", f"more than {MAX_ROWS} rows", row=1)])
    errors: list[FieldError] = []
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for n, line in enumerate(raw, start=2):
        if None in line:
            errors.append(FieldError("file", "more cells than header columns", row=n))
            continue
        kind = (line.get("record") or "").strip().lower()
        if kind not in KINDS:
            errors.append(FieldError("record", "expected unit, site, system or camera", row=n))
            continue
        extra = [c for c in header if c != "record" and c not in COLUMNS[kind] and (line.get(c) or "").strip()]
        errors += [FieldError(c[:64], f"not a {kind} column", "unknown_field", row=n) for c in extra]
        rows.append((n, kind, {c: line[c] for c in COLUMNS[kind] if (line.get(c) or "").strip()}))
    pending: dict[tuple[str, str], Any] = {}
    plans: list[Pending] = []
    for n, kind, data in sorted(rows, key=lambda r: (ORDER[r[1]], r[0])):  # parents before children
        try:
            plan = await registry.plan(subject, kind, data, pending)
        except Invalid as exc:
            errors += [FieldError(e.field, e.reason, e.code, row=n) for e in exc.errors]
            continue
        except Forbidden as exc:
            errors.append(FieldError(exc.field or "unit_id", exc.reason, "forbidden", row=n))
            continue
        pending[(kind, plan.row.id)] = plan.row
        plans.append(plan)
    if errors:
        registry.gw.metrics.inc("vsgw_catalog_rejected_total", reason="import")
        raise Invalid(sorted(errors, key=lambda e: (e.row or 0, e.field)))
    await registry.commit(subject, plans, action="catalog.import")
    counts = {k: 0 for k in KINDS}
    for p in plans:
        counts[p.kind] += 1
    return counts
