"""zh-CN is Simplified Chinese (Qingdao and Wuxi): no user-facing text may hold a character that
OpenCC's Traditional-to-Simplified conversion changes, and every string table has its English
beside it with the same keys. Scans every file that pages, the console, the wall, the catalogue
and compliance texts, error messages and the CLI are made from, and the tests themselves (their
Chinese is what users meet too: camera names, repaired device texts)."""

from __future__ import annotations

from pathlib import Path
import re

import opencc
from playwright.async_api import async_playwright
import pytest

from catalog import pages
from catalog.finding_text import SYSTEM_STATUS
from catalog.legal import REGULATIONS, article
from catalog.sites import categories
from gateway.identity.models import ROLES
from gateway.policy.grants import EMERGENCY_KINDS, PURPOSES

ROOT = Path(__file__).resolve().parents[1]
REGULATIONS_DIR = ROOT / "tests" / "fixtures" / "regulations"  # the published texts' title lines and articles, in Simplified
SCANNED = ("gateway", "catalog", "adapters", "proto", "scripts", "docker", "tests")
SUFFIXES = {".py", ".js", ".html", ".css", ".toml", ".json", ".sh", ".md", ".txt", ".proto", ".yaml", ".yml"}
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
T2S = opencc.OpenCC("t2s")
S2T = opencc.OpenCC("s2t")  # makes the Traditional inputs the scan must catch (none is written in the source)


def user_facing_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for top in SCANNED:
        files += [p for p in (ROOT / top).rglob("*") if p.is_file() and p.suffix in SUFFIXES
                  and "__pycache__" not in p.parts]
    return sorted(files)


def traditional(text: str) -> list[tuple[str, str]]:
    """Every run of Chinese characters that t2s would change, with what it becomes."""
    return [(run, T2S.convert(run)) for run in CJK.findall(text) if T2S.convert(run) != run]


def test_zh_cn_text_in_every_user_facing_file_is_simplified() -> None:
    files = user_facing_files()
    assert ROOT / "catalog" / "pages.py" in files and ROOT / "gateway" / "web" / "admin" / "i18n.js" in files
    found = []
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{n}: {run} → {simplified}" for run, simplified in traditional(line)]
    assert found == [], "Traditional characters under zh-CN:\n" + "\n".join(found)


def test_the_scan_catches_traditional_text() -> None:
    simplified = "应当接入联网共享平台"
    assert S2T.convert(simplified) != simplified
    assert traditional(S2T.convert(simplified)) == [(S2T.convert(simplified), simplified)]
    assert traditional("应当接入联网共享平台的公共安全视频图像信息系统目录") == []


def test_r3_catalogue_strings_have_both_languages_with_the_same_keys() -> None:
    assert set(pages.L["zh"]) == set(pages.L["en"])
    assert all(pages.L["zh"][k] and pages.L["en"][k] for k in pages.L["zh"])
    assert all(c.zh and c.en for c in categories().values())
    assert all(en and zh for en, zh in SYSTEM_STATUS.values())


def test_r3_regulation_titles_are_the_real_ones_in_simplified() -> None:
    """The titles as the cities published them (orders 168 and 204), checked against the texts."""
    texts = {city: T2S.convert((REGULATIONS_DIR / name).read_text(encoding="utf-8"))
             for city, name in (("wuxi", "wuxi-2019.zh.txt"), ("qingdao", "qingdao-2010-2020.zh.txt"))}
    for city, reg in REGULATIONS.items():
        name = reg.title_zh[1:reg.title_zh.index("》")]
        assert name in texts[city] and traditional(reg.title_zh + reg.basis_zh) == []
        assert name in reg.basis_zh
    assert "第二十一条" in texts["wuxi"] and "第二十一条" in REGULATIONS["wuxi"].basis_zh
    assert "联网共享平台" in texts["wuxi"].split("第二十一条")[1][:80]
    assert "第十三条" in REGULATIONS["qingdao"].basis_zh and "共享平台" in texts["qingdao"].split("第十三条")[1][:120]


def test_r17_article_codes_read_as_chinese_citations() -> None:
    assert article("WX 34(2)", "zh") == "第三十四条第（二）项"
    assert article("QD 16 ¶1", "zh") == "第十六条第一款"
    assert article("WX 8", "zh") == "第八条" and article("QD 10", "zh") == "第十条"
    assert article("WX 21", "zh") == "第二十一条" and article("WX 30(6)", "en") == "WX 30(6)"


async def _tables(script: Path, name: str) -> dict:
    """The string table a page script defines, read by the browser's own JavaScript engine."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page()
            await page.add_script_tag(content=script.read_text(encoding="utf-8"))
            return await page.evaluate(f"window.{name}")
        finally:
            await browser.close()


@pytest.mark.asyncio
@pytest.mark.browser
@pytest.mark.parametrize("script,name", [("gateway/web/admin/i18n.js", "VSGW_ADMIN_I18N"),
                                         ("gateway/web/wall/i18n.js", "VSGW_I18N")])
async def test_console_and_wall_string_tables_have_the_same_keys_in_zh_cn_and_en(script: str, name: str) -> None:
    tables = await _tables(ROOT / script, name)
    assert set(tables) == {"zh-CN", "en"}
    zh, en = tables["zh-CN"], tables["en"]
    assert sorted(set(zh) ^ set(en)) == []
    assert [k for k in zh if not zh[k] or not en[k]] == []
    placeholders = re.compile(r"\{(\w+)\}")
    assert [k for k in zh if set(placeholders.findall(zh[k])) != set(placeholders.findall(en[k]))] == []


def test_every_console_label_and_column_has_a_string() -> None:
    """Each data-t key the console's HTML names, each column its script shows and each option
    value of its enumerated fields is in the table (read as text: keys are plain identifiers)."""
    admin = ROOT / "gateway" / "web" / "admin"
    table = (admin / "i18n.js").read_text(encoding="utf-8")
    zh = table[table.index('"zh-CN"'):table.index("\n  en:")]
    keys = set(re.findall(r"\b(\w+):", zh))
    html, js = (admin / "index.html").read_text(encoding="utf-8"), (admin / "admin.js").read_text(encoding="utf-8")
    wanted = set(re.findall(r'data-t="(\w+)"', html))
    for cols in re.findall(r'\[("[a-z_]+"(?:,\s*"[a-z_]+")+)\]', js):
        wanted |= {"col_" + c for c in re.findall(r'"([a-z_]+)"', cols)}
    wanted |= {"kind_" + k for k in EMERGENCY_KINDS} | {"purpose_" + p for p in PURPOSES} | {"role_" + r for r in ROLES}
    wanted |= {f"status_{s}" for s in ("awaiting_second_officer", "awaiting_approval", "approved", "refused")}
    assert sorted(wanted - keys) == []
