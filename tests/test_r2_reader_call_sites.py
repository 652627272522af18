"""The gate is the only way to a stream reader (R2), checked on the source itself: every place in
``gateway/`` and ``adapters/`` that opens a live reader or a playback passes the gate's decision
or an explicitly named internal reader, and every opener checks what it is given."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENERS = {"subscribe", "open_playback"}
CAPABILITY_NAMES = {"decision", "access"}  # names (or attributes) holding the gate's answer or an internal reader's


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path)))
            for folder in ("gateway", "adapters") for path in sorted((ROOT / folder).rglob("*.py"))]


def _internal_constants(tree: ast.Module) -> set[str]:
    """Module-level names bound to ``InternalAccess("...")``."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, "id", None) == "InternalAccess":
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _opens_a_reader(call: ast.Call) -> bool:
    """``….hub.subscribe``, ``….stream(…).subscribe`` / ``stream.subscribe`` and every
    ``open_playback``; event-bus and SIP subscriptions are other things named subscribe."""
    if call.func.attr == "open_playback":  # type: ignore[attr-defined]
        return True
    receiver = ast.unparse(call.func.value).lower()  # type: ignore[attr-defined]
    return receiver.endswith("hub") or "stream" in receiver


def _reader_calls() -> list[tuple[str, ast.Call, set[str]]]:
    out = []
    for path, tree in _sources():
        internal = _internal_constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in OPENERS \
                    and _opens_a_reader(node):
                out.append((f"{path.relative_to(ROOT)}:{node.lineno}", node, internal))
    return out


def test_r2_every_reader_and_playback_call_site_passes_a_capability() -> None:
    calls = _reader_calls()
    assert len(calls) >= 8, "the walk found too few call sites: the test would prove nothing"
    bad = []
    for where, call, internal in calls:
        first = call.args[0] if call.args else None
        ok = isinstance(first, ast.Name) and (first.id in CAPABILITY_NAMES or first.id in internal) or \
            isinstance(first, ast.Attribute) and first.attr in CAPABILITY_NAMES or \
            isinstance(first, ast.Call) and getattr(first.func, "id", None) == "InternalAccess" and first.args
        if not ok:
            bad.append(f"{where}: {ast.unparse(call)[:100]}")
    assert not bad, "reader opened without the gate's decision:\n" + "\n".join(bad)


def test_r2_every_opener_checks_the_capability_it_is_given() -> None:
    """Each implementation of a reader opener calls ``require`` (or hands its access on to one that
    does); the adapter base class only refuses."""
    unchecked = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name not in OPENERS:
                continue
            params = [a.arg for a in node.args.args]
            if "access" not in params:
                continue  # an event-bus subscription, not a reader
            calls = [c for c in ast.walk(node) if isinstance(c, ast.Call)]
            checks = any(getattr(c.func, "id", None) == "require" for c in calls)
            delegates = any(isinstance(c.func, ast.Attribute) and c.func.attr in OPENERS and c.args
                            and isinstance(c.args[0], ast.Name) and c.args[0].id == "access" for c in calls)
            refuses = any(isinstance(s, ast.Raise) for s in node.body)
            if not (checks or delegates or refuses):
                unchecked.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not unchecked, "openers that do not check their access:\n" + "\n".join(unchecked)
