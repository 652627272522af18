"""HTML pages (zh-CN default, ``?lang=en``): the public catalogue (R3), the printable compliance
report (R17) and the admin page. Every value is escaped; the pages get only public or
finding data, never camera rows."""

from __future__ import annotations

from html import escape
from string import Template
from pathlib import Path

from .compliance import Finding
from .publication import Publication

L = {
    "zh": {"title": "應當接入聯網共享平臺的公共安全視頻圖像信息系統目錄", "version": "版本", "published": "發布日期",
           "site": "場所", "category": "場所類別", "district": "區域", "unit": "建設/管理單位", "system": "系統",
           "status": "接入狀態", "connected": "已接入", "built_not_connected": "已建未接入", "not_built": "未建設",
           "decommissioned": "已拆除", "report": "合規檢查報告", "finding": "問題", "breaks": "違反條款",
           "penalty": "處罰條款", "detail": "說明", "count": "問題數", "admin": "視頻圖像信息系統登記管理",
           "import": "批量導入 (CSV)", "upload": "上傳", "other": "English", "other_lang": "en",
           "basis": "依據《無錫市公共安全視頻圖像信息系統管理辦法》第二十一條公布。"},
    "en": {"title": "Catalogue of public-security video systems that must connect to the sharing platform",
           "version": "Version", "published": "Published", "site": "Site", "category": "Site category",
           "district": "District", "unit": "Owner unit", "system": "System", "status": "Connection status",
           "connected": "Connected", "built_not_connected": "Built, not connected", "not_built": "Not built",
           "decommissioned": "Decommissioned", "report": "Compliance report", "finding": "Finding",
           "breaks": "Article broken", "penalty": "Penalty article", "detail": "Detail", "count": "Findings",
           "admin": "Video system registry", "import": "Bulk import (CSV)", "upload": "Upload", "other": "中文",
           "other_lang": "zh", "basis": "Published under WX 21 (catalogue of systems that must connect)."},
}
PAGE = Template((Path(__file__).parent / "templates" / "page.html").read_text(encoding="utf-8"))


def lang_of(query_lang: str | None) -> str:
    return "en" if query_lang == "en" else "zh"


def _page(lang: str, title: str, body: str) -> str:
    t = L[lang]
    return PAGE.substitute(lang="en" if lang == "en" else "zh-CN", title=escape(title), body=body,
                           other=escape(t["other"]), other_lang=t["other_lang"])


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def catalogue_page(pub: Publication, lang: str) -> str:
    t = L[lang]
    rows = [[r["site_name"] or "—", r[f"category_{lang}"] or "—", r["district"], r["unit"],
             r["system_name"] or "—", t[r["status"]]] for r in pub.rows]
    meta = f'<p class="meta">{t["version"]} {pub.version} · {t["published"]} {pub.published_at.date().isoformat()}' \
           f' · <a href="/catalogue.json">JSON</a> · <a href="/catalogue.csv">CSV</a></p>'
    head = [t["site"], t["category"], t["district"], t["unit"], t["system"], t["status"]]
    return _page(lang, t["title"], f"<h1>{escape(t['title'])}</h1>{meta}<p>{escape(t['basis'])}</p>{_table(head, rows)}")


def compliance_page(findings: list[Finding], lang: str, city: str) -> str:
    t = L[lang]
    rows = [[f.title_en if lang == "en" else f.title_zh, f.unit_id, f.system_id or f.site_id, f.camera_id,
             f.breaks, f.penalty or "—", f.detail] for f in findings]
    head = [t["finding"], t["unit"], t["system"], "camera", t["breaks"], t["penalty"], t["detail"]]
    body = f"<h1>{escape(t['report'])} ({escape(city)})</h1><p>{t['count']}: {len(findings)}</p>{_table(head, rows)}"
    return _page(lang, t["report"], body)


def admin_page(lang: str, systems: list[list[str]]) -> str:
    t = L[lang]
    head = ["id", t["system"], t["unit"], t["status"]]
    form = (f'<h2>{escape(t["import"])}</h2><form id="imp"><input type="file" id="f" accept=".csv">'
            f'<button>{escape(t["upload"])}</button></form><pre id="out"></pre>'
            '<script>document.getElementById("imp").onsubmit=async e=>{e.preventDefault();'
            'const f=document.getElementById("f").files[0];if(!f)return;'
            'const r=await fetch("/api/catalog/import",{method:"POST",headers:{"Content-Type":"text/csv"},'
            'body:await f.text(),credentials:"same-origin"});'
            'document.getElementById("out").textContent=JSON.stringify(await r.json(),null,1)};</script>')
    links = (f'<p><a href="/catalog/compliance.html?lang={lang}">{escape(t["report"])}</a> · '
             f'<a href="/catalogue?lang={lang}">{escape(t["title"])}</a></p>')
    return _page(lang, t["admin"], f"<h1>{escape(t['admin'])}</h1>{links}{_table(head, systems)}{form}")
