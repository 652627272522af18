"""Repair of the not-quite-XML some devices send: a bare ``&`` or ``<`` inside a text element
(Hikvision channel names and ``<Address>`` values are written unescaped), or a tag-like fragment
such as ``<b>`` inside a name that never closes.

Only text is repaired — the element structure must already be well formed — so a truncated or
garbled body still fails to parse afterwards and is rejected. The walk keeps the nesting bound
the parser enforces.
"""

from __future__ import annotations

import re
from collections import Counter

_NAME = r"[A-Za-z_:][\w.:-]*"
_TOKEN = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"  # left untouched
    rf"|</(?P<end>{_NAME})\s*>"
    rf"|<(?P<start>{_NAME})(?:\s+{_NAME}\s*=\s*(?:\"[^\"<]*\"|'[^'<]*'))*\s*(?P<empty>/?)>",
    re.DOTALL)
_STRAY_AMP = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});)")


class TooDeep(ValueError):
    pass


def repair(text: str, max_depth: int) -> tuple[str, Counter[str]]:
    """Escape stray ``&`` and ``<`` and unmatched tags; returns the text and what was fixed
    (``amp``, ``lt``, ``unclosed_tag``, ``stray_end_tag``: how many of each)."""
    fixes: Counter[str] = Counter()
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # open element name, index of its start tag in out
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(_text(text[pos:m.start()], fixes))
        pos = m.end()
        token = m.group(0)
        if m.group("start") and not m.group("empty"):
            stack.append((m.group("start"), len(out)))
            if len(stack) > max_depth:
                raise TooDeep(f"more than {max_depth} levels")
            out.append(_amp(token, fixes))
        elif m.group("start"):
            out.append(_amp(token, fixes))
        elif m.group("end"):
            name = m.group("end")
            if any(open_name == name for open_name, _ in stack):
                while stack[-1][0] != name:  # tags opened inside this element and never closed are text
                    _, index = stack.pop()
                    out[index] = out[index].replace("<", "&lt;")
                    fixes["unclosed_tag"] += 1
                stack.pop()
                out.append(token)
            else:
                out.append(token.replace("<", "&lt;"))
                fixes["stray_end_tag"] += 1
        else:
            out.append(token)
    out.append(_text(text[pos:], fixes))
    return "".join(out), fixes


def _text(chunk: str, fixes: Counter[str]) -> str:
    """Character data between tags: any ``<`` left here did not start a tag."""
    chunk = _amp(chunk, fixes)
    if "<" in chunk:
        fixes["lt"] += chunk.count("<")
        chunk = chunk.replace("<", "&lt;")
    return chunk


def _amp(chunk: str, fixes: Counter[str]) -> str:
    fixed, n = _STRAY_AMP.subn("&amp;", chunk)
    if n:
        fixes["amp"] += n
    return fixed
