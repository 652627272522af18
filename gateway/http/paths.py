"""Malformed request targets are a 400 before any route sees them: a broken percent-escape, an
escape that does not decode to UTF-8, a control character in the path or a NUL in the query
(which PostgreSQL text columns and file-system calls cannot take), or a ``Host`` that is no
host[:port] (the request's URL, which the forgery guard and handlers use, is built from it)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from aiohttp import web

from .api import HttpError

_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def target_problem(raw_target: str) -> str | None:
    """What is wrong with a raw request target (path?query), or None."""
    path, _, query = raw_target.partition("?")
    if _BROKEN_ESCAPE.search(raw_target):
        return "a % not followed by two hex digits"
    try:
        decoded_path = unquote_to_bytes(path).decode("utf-8")
        decoded_query = unquote_to_bytes(query.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return "percent-escapes that are not UTF-8"
    if _PATH_CONTROL.search(decoded_path):
        return "a control character in the path"
    if "\x00" in decoded_query:
        return "a NUL byte in the query"
    return None


@web.middleware
async def reject_malformed_targets(request: web.Request, handler):  # noqa: ANN001, ANN201
    problem = target_problem(request.raw_path)
    if problem is None:
        try:
            request.url  # noqa: B018 - built from Host; a port such as 99999 raises here
        except ValueError:
            problem = "a Host header that is not host[:port]"
    if problem is not None:
        raise HttpError(400, "bad_target", f"malformed request target: {problem}")
    return await handler(request)
