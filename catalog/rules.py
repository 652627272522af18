"""Per-city filing and decommission rules (R7, R8, R17) and the articles each finding cites.

Qingdao (order 204, amended 2020) and Wuxi (order 168, 2019) differ in when dismantling must be
reported: Wuxi wants the report at least 10 days *before* (WX 17), Qingdao within 30 days *after*
(QD 16 ¶2). ``[catalog] city`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Citation:
    breaks: str  # the article the finding breaks
    penalty: str | None  # the article that sets the penalty (None: the regulation sets none)


@dataclass(frozen=True, slots=True)
class CityRules:
    city: str
    effective: date  # systems accepted before this are "pre-existing"
    filing_days: int  # from acceptance
    preexisting_filing_days: int  # from ``effective``
    notice_offset_days: int  # notice must be on or before dismantling + offset (negative: before)
    citations: dict[str, Citation] = field(default_factory=dict)

    def filing_due(self, accepted_on: date, pre_existing: bool = False) -> date:
        """R7: 30 days from acceptance; systems built before the rules took effect: 60 days from then."""
        if pre_existing or accepted_on < self.effective:
            return self.effective + timedelta(days=self.preexisting_filing_days)
        return accepted_on + timedelta(days=self.filing_days)

    def notice_due(self, dismantled_on: date) -> date:
        """R8: the last day the dismantling notice may be given."""
        return dismantled_on + timedelta(days=self.notice_offset_days)

    def cite(self, kind: str) -> Citation:
        return self.citations[kind]


QINGDAO = CityRules(
    city="qingdao",
    effective=date(2010, 3, 1),  # QD 36
    filing_days=30,  # QD 16 ¶1
    preexisting_filing_days=60,  # QD 35
    notice_offset_days=30,  # QD 16 ¶2: within 30 days after dismantling
    citations={
        "mandatory_site_without_system": Citation("QD 7", "QD 26"),
        "built_not_connected": Citation("QD 13", None),
        "filing_overdue": Citation("QD 16 ¶1", "QD 28(1)"),
        "prohibited_site_camera": Citation("QD 9", "QD 27"),
        "missing_signage": Citation("QD 17", "QD 28(2)"),
        "decommission_notice_late": Citation("QD 16 ¶2", "QD 28(1)"),
        "camera_offline": Citation("QD 19(3)", "QD 29"),
    },
)

WUXI = CityRules(
    city="wuxi",
    effective=date(2019, 8, 1),  # WX 40
    filing_days=30,  # filing after acceptance (WX 15, WX 32(5)); 30 days as QD 16 and the platform's practice
    preexisting_filing_days=60,  # WX 15 ¶3
    notice_offset_days=-10,  # WX 17: at least 10 days before dismantling
    citations={
        "mandatory_site_without_system": Citation("WX 8", "WX 34(1)"),
        "built_not_connected": Citation("WX 21", "WX 34(2)"),
        "filing_overdue": Citation("WX 15", "WX 36"),
        "prohibited_site_camera": Citation("WX 9", "WX 35"),
        "missing_signage": Citation("WX 14", None),
        "decommission_notice_late": Citation("WX 17", "WX 37"),
        "camera_offline": Citation("WX 30(6)", None),
    },
)

CITIES = {r.city: r for r in (QINGDAO, WUXI)}


def rules_for(city: str) -> CityRules:
    try:
        return CITIES[city]
    except KeyError:
        raise ValueError(f"catalog.city: expected one of {', '.join(sorted(CITIES))}") from None
