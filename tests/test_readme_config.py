"""The README's configuration table names every section and key the gateway accepts, so an
operator reading it never meets an undocumented setting (and a removed one does not linger)."""

from __future__ import annotations

from dataclasses import fields
import importlib
from pathlib import Path
import re

from gateway.config import SECTIONS
from gateway.parts import PARTS

README = Path(__file__).resolve().parents[1] / "README.md"


def _documented() -> dict[str, set[str]]:
    rows = re.findall(r"^\| `\[\[?([a-z_.]+)\]\]?` \| (.+) \|$", README.read_text(), re.M)
    return {section: set(re.findall(r"`([a-z_0-9]+)`", keys)) for section, keys in rows}


def test_readme_names_every_configuration_key() -> None:
    for part in PARTS:
        importlib.import_module(part)
    documented = _documented()
    missing = {name: sorted({f.name for f in fields(cls) if f.init and not f.name.startswith("_")}
                            - documented.get(name, set()))
               for name, cls in SECTIONS.items()}
    assert not {k: v for k, v in missing.items() if v}, f"keys missing from the README's table: {missing}"
