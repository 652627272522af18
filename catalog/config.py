"""The ``[catalog]`` section: which city's rules apply and when an offline camera becomes a finding."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import section


@section("catalog")
@dataclass(slots=True)
class CatalogConfig:
    city: str = "wuxi"  # "wuxi" | "qingdao": filing and decommission rules (R7, R8)
    offline_threshold_s: float = 3600.0  # a bound camera offline longer than this is a finding (R17)
    publisher: str = ""  # shown on the public catalogue, e.g. "无锡市公安局"
