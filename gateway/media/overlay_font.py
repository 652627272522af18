"""Which installed font can draw a watermark's text (Chinese included), found through fontconfig.

Fonts are looked up by the characters they cover rather than by name, so whichever CJK font the
host has (Noto Sans CJK, WenQuanYi Zen Hei, …) is used without configuration. A host without one
still gets a watermark: the Latin part (grant id, time) is drawn and the characters no font
covers are reported, so the caller can log and count them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import logging
import subprocess

log = logging.getLogger(__name__)

# Debian packages that give fontconfig a font covering Chinese.
CJK_PACKAGES = ("fonts-noto-cjk", "fonts-wqy-zenhei")
_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Face:
    """A font file for a text; ``path`` None means Pillow's built-in font."""

    path: str | None
    missing: str = ""  # characters of the text this face has no glyph for, sorted


def face_for(text: str) -> Face:
    """The best installed face for ``text``; blocking (runs fontconfig), call it off the event loop."""
    return _face_for(frozenset(c for c in text if not c.isspace()))


@lru_cache(maxsize=64)
def _face_for(chars: frozenset[str]) -> Face:
    if not chars:
        return Face(_fallback_path())
    covering = _fc_list(f":charset={' '.join(f'{ord(c):x}' for c in sorted(chars))}")
    if covering:
        return Face(_preferred(covering))
    base = _preferred(_fc_list(":lang=zh")) if any(ord(c) > 0x2E7F for c in chars) else None
    base = base or _fallback_path()
    covered = _coverage(base) if base else _ascii_ranges()
    missing = "".join(sorted(c for c in chars if not _in(covered, ord(c))))
    return Face(base, missing)


def _fc(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:  # no fontconfig: Pillow's own font
        log.warning("fontconfig unavailable (%s); watermarks use Pillow's built-in font", type(exc).__name__)
        return ""
    return done.stdout if done.returncode == 0 else ""


def _fc_list(pattern: str) -> list[tuple[str, str]]:
    """(file, style) of the fonts matching ``pattern``, in a stable order."""
    rows = []
    for line in _fc(["fc-list", "--format", "%{file}\t%{family}\t%{style}\n", pattern]).splitlines():
        path, _, rest = line.partition("\t")
        if path.lower().endswith((".ttf", ".otf", ".ttc")):
            rows.append((path, rest))
    return sorted(rows)


def _preferred(rows: list[tuple[str, str]]) -> str | None:
    """Bold sans faces read best at small sizes over video; italic, serif and mono least."""

    def score(row: tuple[str, str]) -> tuple[int, str]:
        name = row[1].lower()
        s = 0
        s += 4 if "bold" in name else 0
        s += 2 if "sans" in name or "hei" in name else 0
        s -= 4 if "italic" in name or "oblique" in name else 0
        s -= 2 if "serif" in name.replace("sans serif", "") or "mono" in name else 0
        s -= 1 if "condensed" in name or "light" in name else 0
        return (-s, row[0])

    return min(rows, key=score)[0] if rows else None


def _fallback_path() -> str | None:
    path = _fc(["fc-match", "--format", "%{file}", "sans-serif:bold"]).strip()
    return path or None


def _coverage(path: str) -> list[tuple[int, int]]:
    ranges = []
    for token in _fc(["fc-query", "--format", "%{charset}", path]).split():
        lo, _, hi = token.partition("-")
        try:
            ranges.append((int(lo, 16), int(hi or lo, 16)))
        except ValueError:
            continue
    return ranges


def _ascii_ranges() -> list[tuple[int, int]]:
    return [(0x20, 0x7E)]


def _in(ranges: list[tuple[int, int]], code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)
