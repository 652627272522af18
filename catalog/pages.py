"""HTML pages (zh-CN Simplified by default, ``?lang=en``): the public catalogue (R3), the printable
compliance report (R17) and the registry admin page. Every value is escaped; the pages get only
public or finding data, never camera rows. The legal basis follows ``[catalog] city``; dates and
times are shown in ``[node] time_zone``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from .compliance import Finding
from .finding_text import local_time, status_name
from .legal import article, regulation
from .publication import Publication

L = {
    "zh": {"title": "应当接入联网共享平台的公共安全视频图像信息系统目录", "version": "版本", "published": "发布日期",
           "publisher": "发布单位", "site": "场所", "category": "场所类别", "district": "区域", "unit": "建设/管理单位",
           "system": "系统", "camera": "摄像机", "status": "接入状态", "connected": "已接入",
           "built_not_connected": "已建未接入", "not_built": "未建设", "decommissioned": "已拆除",
           "report": "合规检查报告", "finding": "问题", "breaks": "违反条款", "penalty": "处罚条款", "detail": "说明",
           "count": "问题数", "generated": "生成时间", "rules": "适用规章", "admin": "视频图像信息系统登记管理",
           "id": "编号", "system_status": "系统状态", "import": "批量导入（CSV）", "upload": "上传",
           "other": "English", "other_lang": "en", "city_wuxi": "无锡市", "city_qingdao": "青岛市"},
    "en": {"title": "Catalogue of public-security video systems that must connect to the sharing platform",
           "version": "Version", "published": "Published", "publisher": "Publisher", "site": "Site",
           "category": "Site category", "district": "District", "unit": "Owner unit", "system": "System",
           "camera": "Camera", "status": "Connection status", "connected": "Connected",
           "built_not_connected": "Built, not connected", "not_built": "Not built", "decommissioned": "Decommissioned",
           "report": "Compliance report", "finding": "Finding", "breaks": "Article broken",
           "penalty": "Penalty article", "detail": "Detail", "count": "Findings", "generated": "Generated",
           "rules": "Rules applied", "admin": "Video system registry", "id": "ID", "system_status": "System status",
           "import": "Bulk import (CSV)", "upload": "Upload", "other": "中文", "other_lang": "zh",
           "city_wuxi": "Wuxi", "city_qingdao": "Qingdao"},
}
PAGE = Template((Path(__file__).parent / "templates" / "page.html").read_text(encoding="utf-8"))


def lang_of(query_lang: str | None) -> str:
    return "en" if query_lang == "en" else "zh"


def _page(lang: str, title: str, body: str, query: Mapping[str, str]) -> str:
    """The page frame; the language switch keeps the rest of the query (filters, token)."""
    t = L[lang]
    switch = "?" + urlencode({**query, "lang": t["other_lang"]})
    return PAGE.substitute(lang="en" if lang == "en" else "zh-CN", title=escape(title), body=body,
                           other=escape(t["other"]), other_href=escape(switch))


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _cite(code: str, lang: str) -> str:
    """Chinese readers get the article written out, with the code for cross-reference."""
    if not code:
        return "—"
    return code if lang == "en" else f"{article(code, lang)}（{code}）"


def catalogue_page(pub: Publication, lang: str, city: str, zone: ZoneInfo, publisher: str = "",
                   query: Mapping[str, str] = {}) -> str:
    t = L[lang]
    rows = [[r["site_name"] or "—", r[f"category_{lang}"] or "—", r["district"], r["unit"],
             r["system_name"] or "—", t[r["status"]]] for r in pub.rows]
    by = f' · {escape(t["publisher"])} {escape(publisher)}' if publisher else ""
    meta = f'<p class="meta">{t["version"]} {pub.version} · {t["published"]} ' \
           f'{pub.published_at.astimezone(zone).date().isoformat()}{by}' \
           f' · <a href="/catalogue.json">JSON</a> · <a href="/catalogue.csv">CSV</a></p>'
    head = [t["site"], t["category"], t["district"], t["unit"], t["system"], t["status"]]
    basis = f'<p class="basis">{escape(regulation(city).basis(lang))}</p>'
    return _page(lang, t["title"], f"<h1>{escape(t['title'])}</h1>{meta}{basis}{_table(head, rows)}", query)


def compliance_page(findings: list[Finding], lang: str, city: str, zone: ZoneInfo, at: datetime,
                    query: Mapping[str, str] = {}) -> str:
    t = L[lang]
    rows = [[f.title_en if lang == "en" else f.title_zh, f.unit_id, f.system_id or f.site_id, f.camera_id,
             _cite(f.breaks, lang), _cite(f.penalty, lang), f.detail if lang == "en" else f.detail_zh]
            for f in findings]
    head = [t["finding"], t["unit"], t["system"], t["camera"], t["breaks"], t["penalty"], t["detail"]]
    meta = (f'<p class="meta">{escape(t["rules"])}: {escape(regulation(city).title(lang))}<br>'
            f'{escape(t["generated"])} {escape(local_time(at, zone))} · {escape(t["count"])}: {len(findings)}</p>')
    left, right = (" (", ")") if lang == "en" else ("（", "）")
    body = f"<h1>{escape(t['report'])}{left}{escape(t['city_' + city])}{right}</h1>{meta}{_table(head, rows)}"
    return _page(lang, t["report"], body, query)


def admin_page(lang: str, systems: list[tuple[str, str, str, str]], query: Mapping[str, str] = {}) -> str:
    """``systems``: (id, name, unit id, status) rows. The upload reuses the page's own credential:
    the session cookie, or the ``access_token`` the page was opened with."""
    t = L[lang]
    head = [t["id"], t["system"], t["unit"], t["system_status"]]
    rows = [[ident, name, unit, status_name(status, lang)] for ident, name, unit, status in systems]
    form = (f'<h2>{escape(t["import"])}</h2><form id="imp"><input type="file" id="f" accept=".csv">'
            f'<button>{escape(t["upload"])}</button></form><pre id="out"></pre>'
            '<script>document.getElementById("imp").onsubmit=async e=>{e.preventDefault();'
            'const f=document.getElementById("f").files[0];if(!f)return;'
            'const tok=new URLSearchParams(location.search).get("access_token");'
            'const h={"Content-Type":"text/csv"};if(tok)h.Authorization="Bearer "+tok;'
            'const r=await fetch("/api/catalog/import",{method:"POST",headers:h,'
            'body:await f.text(),credentials:"same-origin"});'
            'document.getElementById("out").textContent=JSON.stringify(await r.json(),null,1)};</script>')
    keep = {k: v for k, v in query.items() if k == "access_token"}
    suffix = escape(urlencode({**keep, "lang": lang}))
    links = (f'<p><a href="/catalog/compliance.html?{suffix}">{escape(t["report"])}</a> · '
             f'<a href="/catalogue?lang={lang}">{escape(t["title"])}</a></p>')
    return _page(lang, t["admin"], f"<h1>{escape(t['admin'])}</h1>{links}{_table(head, rows)}{form}", query)
