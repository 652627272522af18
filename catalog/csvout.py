"""CSV the catalog hands out, safe to open in a spreadsheet (OWASP "CSV Injection"): a text cell
starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return would be run as a formula, so it
gets a leading single quote; every cell is quoted, embedded quotes doubled."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import csv
import io
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would evaluate, made literal; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A header and rows of exactly ``fields``, every cell neutralised."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, extrasaction="raise", quoting=csv.QUOTE_ALL)
    w.writeheader()
    w.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()
