"""What a compliance finding says, in English and Simplified Chinese, with dates and times in the
node's zone (``[node] time_zone``): each helper returns ``(en, zh)``. Nothing confidential (R4)
is ever passed in: only ids, categories, statuses and dates."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from .sites import category

SYSTEM_STATUS = {  # catalog.models.SYSTEM_STATUS in both languages
    "planned": ("planned", "规划中"), "built": ("built", "已建成"), "accepted": ("accepted", "已验收"),
    "filed": ("filed", "已备案"), "connected": ("connected", "已联网"), "decommissioned": ("decommissioned", "已拆除"),
}


def status_name(status: str, lang: str) -> str:
    en, zh = SYSTEM_STATUS.get(status, (status, status))
    return en if lang == "en" else zh


def local_time(when: datetime, zone: ZoneInfo) -> str:
    """Minutes in the node's zone with its offset, e.g. ``2026-11-20 08:00+08:00``."""
    return when.astimezone(zone).isoformat(sep=" ", timespec="minutes")


def site_category(code: str) -> tuple[str, str]:
    cat = category(code)
    return (f"site category {cat.en if cat else code} ({code})", f"场所类别：{cat.zh if cat else code}")


def not_connected(status: str) -> tuple[str, str]:
    return (f"status {status}", f"系统状态：{status_name(status, 'zh')}，未接入联网共享平台")


def filing_overdue(due: date, filed_on: date | None, days: int) -> tuple[str, str]:
    en_state = f"filed {filed_on.isoformat()}" if filed_on else "not filed"
    zh_state = f"{filed_on.isoformat()} 备案" if filed_on else "尚未备案"
    return (f"due {due.isoformat()}, {en_state}, {days} days late",
            f"应于 {due.isoformat()} 前备案，{zh_state}，逾期 {days} 天")


def notice_late(dismantled_on: date, due: date, notice_on: date | None) -> tuple[str, str]:
    en_state = f"notice {notice_on.isoformat()}" if notice_on else "no notice"
    zh_state = f"{notice_on.isoformat()} 报告" if notice_on else "未报告"
    return (f"dismantled {dismantled_on.isoformat()}, notice due by {due.isoformat()}, {en_state}",
            f"{dismantled_on.isoformat()} 拆除，应于 {due.isoformat()} 前报告，{zh_state}")


def no_signage() -> tuple[str, str]:
    return ("no signage recorded", "未登记明显标识")


def offline(channel: str, since: datetime, zone: ZoneInfo) -> tuple[str, str]:
    at = local_time(since, zone)
    return (f"channel {channel} offline since {at}", f"通道 {channel} 自 {at} 起离线")
