"""Site categories as data (R5, R6): which kinds of place must have a system and which may have
no camera at all, each with the articles that say so. Loaded once from ``sites.toml``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
import tomllib


@dataclass(frozen=True, slots=True)
class SiteCategory:
    code: str
    kind: str  # "mandatory" | "prohibited"
    zh: str
    en: str
    articles: tuple[str, ...]

    @property
    def mandatory(self) -> bool:
        return self.kind == "mandatory"

    @property
    def prohibited(self) -> bool:
        return self.kind == "prohibited"

    def name(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def to_dict(self) -> dict:
        return {"code": self.code, "kind": self.kind, "zh": self.zh, "en": self.en, "articles": list(self.articles)}


@cache
def categories() -> dict[str, SiteCategory]:
    raw = tomllib.loads((Path(__file__).with_name("sites.toml")).read_text(encoding="utf-8"))
    return {code: SiteCategory(code, v["kind"], v["zh"], v["en"], tuple(v["articles"])) for code, v in raw.items()}


def category(code: str) -> SiteCategory | None:
    return categories().get(code)
