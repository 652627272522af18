"""Input validation for registry records. Every error names the field and the reason and never
echoes the value, so a confidential value (R4) cannot leak through an error message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
import re
from typing import Any

from .models import FUNDING, SYSTEM_STATUS, UNIT_TYPES
from .sites import categories, category

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
ADDRESS_CODE = re.compile(r"^[0-9A-Za-z]{1,32}$")


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str
    code: str = "invalid"
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason, "code": self.code}
        if self.row is not None:
            out["row"] = self.row
        return out


class Invalid(ValueError):
    """One or more refused fields; ``errors`` lists them all."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))

    @property
    def code(self) -> str:
        codes = {e.code for e in self.errors}
        return codes.pop() if len(codes) == 1 else "invalid"


def prohibited_error(code: str, field: str = "site_category") -> FieldError:
    """R6 (QD 9, WX 9): the refusal cites the articles that forbid the category."""
    cat = category(code)
    assert cat is not None
    return FieldError(field, f"'{code}' ({cat.zh} / {cat.en}) is a prohibited site: no camera may be "
                             f"installed there ({', '.join(cat.articles)})", "prohibited_site")


class _Checker:
    def __init__(self, data: dict[str, Any], partial: bool) -> None:
        if not isinstance(data, dict):
            raise Invalid([FieldError("body", "expected a JSON object")])
        self.data, self.partial = data, partial
        self.out: dict[str, Any] = {}
        self.errors: list[FieldError] = []
        self.known: set[str] = set()

    def _get(self, name: str, required: bool) -> Any:
        self.known.add(name)
        value = self.data.get(name)
        if value is None or value == "":
            if required and not self.partial:
                self.errors.append(FieldError(name, "required", "required"))
            elif name in self.data:
                self.out[name] = None
            return None
        return value

    def fail(self, name: str, reason: str, code: str = "invalid") -> None:
        self.errors.append(FieldError(name, reason, code))

    def text(self, name: str, required: bool = True, limit: int = 200) -> None:
        v = self._get(name, required)
        if v is None:
            return
        if not isinstance(v, str):
            return self.fail(name, "expected text")
        v = v.strip()
        if len(v) > limit:
            return self.fail(name, f"longer than {limit} characters")
        if any(ord(c) < 32 for c in v):
            return self.fail(name, "control characters are not allowed")
        self.out[name] = v

    def ident(self, name: str, required: bool = True) -> None:
        v = self._get(name, required)
        if v is None:
            return
        if not isinstance(v, str) or not ID.match(v):
            return self.fail(name, "expected an id of 1-64 letters, digits or _.:- (starting with a letter or digit)")
        self.out[name] = v

    def choice(self, name: str, options: tuple[str, ...], required: bool = True) -> None:
        v = self._get(name, required)
        if v is None:
            return
        if v not in options:
            return self.fail(name, f"expected one of {', '.join(options)}")
        self.out[name] = v

    def integer(self, name: str, lo: int, hi: int, required: bool = True) -> None:
        v = self._get(name, required)
        if v is None:
            return
        try:
            n = int(v)
        except (TypeError, ValueError):
            return self.fail(name, "expected a whole number")
        if isinstance(v, float) and not v.is_integer() or not lo <= n <= hi:
            return self.fail(name, f"expected a whole number from {lo} to {hi}")
        self.out[name] = n

    def boolean(self, name: str, required: bool = False) -> None:
        v = self._get(name, required)
        if v is None:
            return
        if isinstance(v, bool):
            self.out[name] = v
        elif isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "y", "是"):
            self.out[name] = True
        elif isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "n", "否"):
            self.out[name] = False
        else:
            self.fail(name, "expected true or false")

    def day(self, name: str, required: bool = False) -> None:
        v = self._get(name, required)
        if v is None:
            return
        if isinstance(v, date):
            self.out[name] = v
            return
        try:
            self.out[name] = date.fromisoformat(str(v))
        except ValueError:
            self.fail(name, "expected a date YYYY-MM-DD")

    def result(self) -> dict[str, Any]:
        self.errors += [FieldError(str(k)[:64], "unknown field", "unknown_field")
                        for k in self.data if k not in self.known]
        if self.errors:
            raise Invalid(self.errors)
        return self.out


def unit(data: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    c = _Checker(data, partial)
    if not partial:
        c.ident("id")
    c.text("name")
    c.choice("type", UNIT_TYPES)
    c.text("district", limit=64)
    return c.result()


def site(data: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    c = _Checker(data, partial)
    if not partial:
        c.ident("id")
    c.text("name")
    c.text("district", limit=64)
    c.ident("unit_id")
    code = c._get("category", True)
    if code is not None:
        cat = category(code) if isinstance(code, str) else None
        if cat is None:
            c.fail("category", "unknown site category; see /api/catalog/site-categories")
        elif cat.prohibited:
            c.errors.append(prohibited_error(code, "category"))
        else:
            c.out["category"] = code
    return c.result()


def system(data: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    c = _Checker(data, partial)
    if not partial:
        c.ident("id")
    c.text("name")
    c.ident("unit_id")
    c.ident("operator_unit_id", required=False)
    c.ident("site_id", required=False)
    c.choice("funding", FUNDING)
    c.integer("security_level", 0, 9)
    c.choice("status", tuple(s for s in SYSTEM_STATUS if s != "decommissioned"), required=False)
    c.day("accepted_on")
    c.boolean("pre_existing")
    return c.result()


def camera(data: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    c = _Checker(data, partial)
    if not partial:
        c.ident("id")
        c.ident("system_id")
    c.text("name")
    code = c._get("site_category", True)
    if code is not None:
        if not isinstance(code, str) or code not in categories():
            c.fail("site_category", "unknown site category; see /api/catalog/site-categories")
        elif categories()[code].prohibited:
            c.errors.append(prohibited_error(code))
        else:
            c.out["site_category"] = code
    c.text("installation_location", limit=500)
    loc = c._get("address_code", True)
    if loc is not None:
        if not isinstance(loc, str) or not ADDRESS_CODE.match(loc.strip()):
            c.fail("address_code", "expected 1-32 letters or digits")
        else:
            c.out["address_code"] = loc.strip()
    c.text("device_type", limit=100)
    c.boolean("signage")
    c.known.add("privacy_masks")
    if "privacy_masks" in c.data:
        masks = masks_of(c.data["privacy_masks"], c)
        if masks is not None:
            c.out["privacy_masks"] = masks
    c.ident("channel_id", required=False)
    return c.result()


def masks_of(value: Any, c: _Checker) -> list[list[float]] | None:
    """Privacy-mask zones (R6, QD 9 ¶2): normalised rectangles [x, y, w, h] inside the frame."""
    if value is None or value == "":
        return []
    if isinstance(value, str):  # CSV: "x,y,w,h;x,y,w,h"
        try:
            value = [[float(n) for n in part.split(",")] for part in value.split(";") if part.strip()]
        except ValueError:
            c.fail("privacy_masks", "expected rectangles x,y,w,h separated by ';'")
            return None
    if not isinstance(value, list) or len(value) > 32:
        c.fail("privacy_masks", "expected a list of at most 32 rectangles [x, y, w, h]")
        return None
    out = []
    for i, rect in enumerate(value):
        ok = isinstance(rect, list | tuple) and len(rect) == 4 and all(
            isinstance(n, int | float) and not isinstance(n, bool) for n in rect)
        if ok:
            x, y, w, h = (float(n) for n in rect)
            ok = 0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9
        if not ok:
            c.fail(f"privacy_masks[{i}]", "expected [x, y, w, h] normalised to 0..1, inside the frame, w and h > 0")
            return None
        out.append([x, y, w, h])
    return out


def decommission(data: dict[str, Any]) -> dict[str, Any]:
    c = _Checker(data, False)
    c.day("notice_on")
    c.day("dismantled_on")
    if "notice_on" not in c.out and "dismantled_on" not in c.out and not c.errors:
        c.fail("notice_on", "give notice_on and/or dismantled_on", "required")
    return c.result()


def filing(data: dict[str, Any]) -> dict[str, Any]:
    c = _Checker(data, False)
    c.day("filed_on", required=True)
    c.text("filing_ref", required=False, limit=64)
    return c.result()
