"""The city's regulation as people read it: its title, the article the public catalogue is
published under, and article codes ("WX 34(2)", "QD 16 ¶1") written out in Chinese legal style
(第三十四条第（二）项, 第十六条第一款). ``[catalog] city`` picks the regulation."""

from __future__ import annotations

from dataclasses import dataclass
import re


@dataclass(frozen=True, slots=True)
class Regulation:
    code: str  # the prefix article codes carry: "WX", "QD"
    title_zh: str
    title_en: str
    basis_zh: str  # the catalogue's legal basis (R3)
    basis_en: str

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title_zh

    def basis(self, lang: str) -> str:
        return self.basis_en if lang == "en" else self.basis_zh


REGULATIONS = {
    "wuxi": Regulation(
        "WX", "《无锡市公共安全视频图像信息系统管理办法》（无锡市人民政府令第168号）",
        "Wuxi Measures for the Administration of Public Security Video Image Information Systems "
        "(Wuxi Municipal People's Government Order No. 168, 2019)",
        "依据《无锡市公共安全视频图像信息系统管理办法》第二十一条，公布应当接入公共安全视频图像信息联网共享平台的"
        "公共安全视频图像信息系统。",
        "Published under article 21 of the Wuxi Measures for the Administration of Public Security Video Image "
        "Information Systems: the systems that must connect to the public-security video sharing platform."),
    "qingdao": Regulation(
        "QD", "《青岛市公共安全视频图像信息系统管理办法》（青岛市人民政府令第204号，2020年修订）",
        "Qingdao Measures for the Administration of Public Security Video Image Information Systems "
        "(Qingdao Municipal People's Government Order No. 204, 2010, amended 2020)",
        "依据《青岛市公共安全视频图像信息系统管理办法》第十三条，公布应当分级、分权限接入视频监控资源共享平台的"
        "视频图像信息系统。",
        "Published under article 13 of the Qingdao Measures for the Administration of Public Security Video Image "
        "Information Systems: the systems that must connect, graded and with tiered permissions, to the video "
        "resource sharing platform."),
}

DIGITS = "零一二三四五六七八九"
CODE = re.compile(r"^(?P<law>[A-Z]+) (?P<article>\d+)(?: ¶(?P<para>\d+))?(?:\((?P<item>\d+)\))?$")


def regulation(city: str) -> Regulation:
    return REGULATIONS[city]


def numeral(n: int) -> str:
    """1–99 as Chinese numerals: 8 → 八, 10 → 十, 21 → 二十一, 30 → 三十."""
    if not 0 < n < 100:
        raise ValueError(f"article number out of range: {n}")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else DIGITS[tens] + "十")
    return head + (DIGITS[ones] if ones else "")


def article(code: str, lang: str) -> str:
    """An article code as the reader's language cites it; English keeps the code itself."""
    m = CODE.match(code)
    if lang == "en" or m is None:
        return code
    out = f"第{numeral(int(m['article']))}条"
    if m["para"]:
        out += f"第{numeral(int(m['para']))}款"
    if m["item"]:
        out += f"第（{numeral(int(m['item']))}）项"
    return out
