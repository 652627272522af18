"""Counters and gauges in the Prometheus text format, without a global registry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]
Collector = Callable[[], Iterable[tuple[str, Labels, float]]]


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}
        self._collectors: list[Collector] = []

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self._counters[name]
        series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def collector(self, fn: Collector) -> None:
        """``fn`` yields (name, labels, value) gauges at scrape time."""
        self._collectors.append(fn)

    def render(self) -> str:
        series: dict[str, list[tuple[Labels, float]]] = defaultdict(list)
        for name, values in self._counters.items():
            series[name].extend(values.items())
        for fn in self._collectors:
            for name, labels, value in fn():
                series[name].append((labels, value))
        lines: list[str] = []
        for name in sorted(series):
            kind, text = self._help.get(name, ("counter" if name.endswith("_total") else "gauge", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in series[name]:
                lbl = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{lbl}}} {value:g}" if lbl else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
