"""Compliance findings (R5, R7, R8, R17, R19): each cites the article it breaks and the article
that sets the penalty under the configured city's rules. Details never carry confidential values."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select

from . import csvout, finding_text as text
from .models import CameraRow, SiteRow, SystemRow
from .sites import categories

if TYPE_CHECKING:
    from .registry import Registry

TITLES = {
    "mandatory_site_without_system": ("应建未建：强制建设场所无系统", "Mandatory site without a system"),
    "built_not_connected": ("已建未联网", "System built but not connected"),
    "filing_overdue": ("逾期未备案", "Filing overdue"),
    "prohibited_site_camera": ("禁止场所安装摄像机", "Camera at a prohibited site"),
    "missing_signage": ("未设置明显标识", "Camera without visible signage"),
    "decommission_notice_late": ("拆除报告逾期或缺失", "Dismantling notice late or missing"),
    "camera_offline": ("摄像机离线超时", "Camera offline beyond threshold"),
}
FIELDS = ("kind", "title_zh", "title_en", "unit_id", "system_id", "camera_id", "site_id", "breaks", "penalty", "detail",
          "detail_zh")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    title_zh: str
    title_en: str
    unit_id: str
    system_id: str
    camera_id: str
    site_id: str
    breaks: str
    penalty: str
    detail: str  # English
    detail_zh: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Compliance:
    def __init__(self, registry: Registry, offline_threshold_s: float, zone: ZoneInfo) -> None:
        self.registry = registry
        self.threshold = timedelta(seconds=offline_threshold_s)
        self.zone = zone  # deadlines fall on the local date; times in details are local

    async def findings(self, at: datetime, unit_id: str | None = None, system_id: str | None = None) -> list[Finding]:
        rules = self.registry.rules
        today = at.astimezone(self.zone).date()
        out: list[Finding] = []

        def add(kind: str, unit: str, detail: tuple[str, str], system: str = "", camera: str = "", site: str = "") -> None:
            c = rules.cite(kind)
            zh, en = TITLES[kind]
            out.append(Finding(kind, zh, en, unit, system, camera, site, c.breaks, c.penalty or "", *detail))

        prohibited = [code for code, cat in categories().items() if cat.prohibited]
        async with self.registry.gw.db.session() as s:
            qs = select(SystemRow)
            qsite = select(SiteRow)
            qc = select(CameraRow.id, CameraRow.site_category, CameraRow.signage, CameraRow.channel_id,
                        CameraRow.last_seen, CameraRow.bound_at, SystemRow.id, SystemRow.unit_id) \
                .join(SystemRow, CameraRow.system_id == SystemRow.id).where(CameraRow.status == "active")
            if unit_id:
                qs, qsite, qc = qs.where(SystemRow.unit_id == unit_id), qsite.where(SiteRow.unit_id == unit_id), \
                    qc.where(SystemRow.unit_id == unit_id)
            if system_id:
                qs, qc = qs.where(SystemRow.id == system_id), qc.where(SystemRow.id == system_id)
                qsite = qsite.where(SiteRow.id.in_(select(SystemRow.site_id).where(SystemRow.id == system_id)))
            systems = list(await s.scalars(qs.order_by(SystemRow.id)))
            sites = list(await s.scalars(qsite.order_by(SiteRow.id)))
            built = set(await s.scalars(select(SystemRow.site_id).where(SystemRow.status != "decommissioned")))
            cameras = (await s.execute(qc.order_by(CameraRow.id))).all()

        for site in sites:
            if site.id not in built:
                add("mandatory_site_without_system", site.unit_id, text.site_category(site.category), site=site.id)
        for sy in systems:
            if sy.status in ("built", "accepted", "filed"):
                add("built_not_connected", sy.unit_id, text.not_connected(sy.status), system=sy.id, site=sy.site_id or "")
            if sy.accepted_on is not None and sy.status != "planned":
                due = rules.filing_due(sy.accepted_on, sy.pre_existing)
                done = sy.filed_on or today
                if done > due:
                    add("filing_overdue", sy.unit_id, text.filing_overdue(due, sy.filed_on, (done - due).days),
                        system=sy.id)
            if sy.dismantled_on is not None or sy.status == "decommissioned":
                due = rules.notice_due(sy.dismantled_on) if sy.dismantled_on else None
                if due is not None and (sy.notice_on or today) > due:
                    add("decommission_notice_late", sy.unit_id, text.notice_late(sy.dismantled_on, due, sy.notice_on),
                        system=sy.id)
        channels = self.registry.gw.registry.channels
        for cid, cat, signage, channel, last_seen, bound_at, sys_id, unit in cameras:
            if cat in prohibited:
                add("prohibited_site_camera", unit, text.site_category(cat), system=sys_id, camera=cid)
            if not signage:
                add("missing_signage", unit, text.no_signage(), system=sys_id, camera=cid)
            if channel is not None:
                live = channels.get(channel)
                since = _aware(last_seen or bound_at)
                if not (live is not None and live.online) and since is not None and at - since > self.threshold:
                    add("camera_offline", unit, text.offline(channel, since, self.zone), system=sys_id, camera=cid)
        return out


def _aware(t: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=UTC)


def to_csv(findings: list[Finding]) -> str:
    return csvout.to_csv(FIELDS, (f.to_dict() for f in findings))
