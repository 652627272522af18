"""Reading a JSON request body safely: an object, not nested deeper than ``MAX_DEPTH``, numbers in
range. Anything else is a 400 (counted by the error middleware), never a parser crash."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from .api import HttpError

MAX_DEPTH = 32
MAX_INT_DIGITS = 19  # a signed 64-bit integer; longer digit strings are not identifiers or counts

_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


class _OutOfRange(ValueError):
    pass


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays/objects nest deeper than ``limit``, found without recursion: strings are
    dropped, then each pass removes the innermost bracket pairs, all in C-speed regex passes."""
    skeleton = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    for _ in range(limit):
        skeleton, removed = _INNERMOST.subn("", skeleton)
        if not skeleton or not removed:  # empty: shallow enough; stuck: unbalanced, the parser says so
            return False
    return bool(skeleton)


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _OutOfRange(digits)
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text)
    return value


def _constant(name: str) -> float:
    raise _OutOfRange(name)  # NaN and Infinity are not JSON


def parse_object(raw: bytes, charset: str | None = None) -> dict[str, Any]:
    """``raw`` as a JSON object, or an HttpError 400 saying what is wrong with it."""
    try:
        text = raw.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise HttpError(400, "bad_json", "the body is not text in its declared charset (UTF-8 by default)") from None
    if too_deep(text):
        raise HttpError(400, "bad_json", f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        body = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _OutOfRange:
        raise HttpError(400, "bad_json", "a number is out of range (64-bit integers, finite numbers)") from None
    except (ValueError, RecursionError):
        raise HttpError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HttpError(400, "bad_json", "the body must be a JSON object")
    return body


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says so (a 413 past the route's limit)."""
    return parse_object(await request.read(), request.charset)
