"""MANSCDP: the XML in GB/T 28181 MESSAGE bodies (R1).

Bodies are decoded GB18030 first (2022 mandates it; 2016 devices declare GB2312, a subset) with a
UTF-8 fallback and an optional per-device override; element names match case-insensitively, since
devices and the 2022 text disagree on case. Bodies come from untrusted devices: defusedxml parses
them (no DTD, no entities), within a size and a nesting bound. A body that is not well formed only
because of a bare ``&`` or ``<`` in its text is repaired (:mod:`.xmlrepair`) rather than dropped —
one such name would otherwise lose a whole catalog packet — and the message says what was fixed.
Parsing yields a small tree of :class:`Node`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .xmlrepair import TooDeep, repair

CONTENT_TYPE = "Application/MANSCDP+xml"
ROOTS = ("query", "control", "notify", "response")
_PROLOG = re.compile(rb"^\s*<\?xml[^>]*\?>", re.DOTALL)
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9_-]+)["']""")
MAX_BODY = 4 * 1024 * 1024
MAX_DEPTH = 32  # MANSCDP nests 4 levels (Response/DeviceList/Item/Info); anything far deeper is hostile


class XmlError(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(slots=True)
class Node:
    """An element with a lower-cased tag; ``text`` stripped; children in order."""

    tag: str
    text: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def find(self, path: str) -> Node | None:
        node: Node | None = self
        for part in path.lower().split("/"):
            node = next((c for c in node.children if c.tag == part), None) if node else None
        return node

    def findall(self, tag: str) -> list[Node]:
        tag = tag.lower()
        return [c for c in self.children if c.tag == tag]

    def get(self, path: str, default: str = "") -> str:
        node = self.find(path)
        return node.text if node is not None else default

    def int(self, path: str, default: int = 0) -> int:
        value = self.get(path)
        return int(value) if value.strip().lstrip("-").isdigit() else default


@dataclass(slots=True)
class Manscdp:
    kind: str  # query | control | notify | response
    cmd: str  # CmdType, as sent
    sn: int
    device_id: str
    root: Node
    repaired: tuple[str, ...] = ()  # what the text repair fixed (amp, lt, …); empty when the body was well formed


def decode(body: bytes, charset: str | None = None, declared: str = "") -> str:
    """Bytes → text. The per-device override wins. A body declared UTF-8 is read as UTF-8. Otherwise
    (declared GB2312/GBK/GB18030 or nothing) it is GB18030 — unless it is valid UTF-8 made of 3-byte
    sequences only, which is how CJK looks in UTF-8 from devices that mislabel it (WVP #260)."""
    if charset:
        return body.decode(charset, errors="replace")
    if declared.lower().replace("-", "") == "utf8" or _looks_utf8(body):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return body.decode("gb18030", errors="replace")


def _looks_utf8(body: bytes) -> bool:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    wide = [c for c in text if ord(c) > 0x7F]
    return bool(wide) and all(0x800 <= ord(c) <= 0xFFFF for c in wide)


def parse(body: bytes, charset: str | None = None) -> Manscdp:
    if len(body) > MAX_BODY:
        raise XmlError("too_large")
    prolog = _PROLOG.match(body)
    declared = _ENCODING.search(prolog.group(0)) if prolog else None
    text = decode(body[prolog.end():] if prolog else body, charset,
                  declared.group(1).decode("ascii", "replace") if declared else "")
    elem, repaired = _parse_xml(text.strip())
    root = _node(elem, 1)
    if root.tag not in ROOTS:
        raise XmlError("bad_root", root.tag)
    cmd = root.get("cmdtype")
    device = root.get("deviceid")
    if not cmd or not device:
        raise XmlError("missing_field", "CmdType/DeviceID")
    sn_text = root.get("sn").strip()
    return Manscdp(root.tag, cmd, int(sn_text) if sn_text.isdigit() else 0, device, root, repaired)


def _parse_xml(text: str) -> tuple[Element, tuple[str, ...]]:
    """Parse; on a syntax error, repair the text and parse once more (the first error is reported)."""
    try:
        return _fromstring(text), ()
    except ParseError as exc:
        first = exc
    try:
        fixed, fixes = repair(text, MAX_DEPTH)
    except TooDeep as exc:
        raise XmlError("too_deep", str(exc)) from None
    if not fixes:
        raise XmlError("bad_xml", str(first)) from None
    try:
        return _fromstring(fixed), tuple(sorted(fixes))
    except ParseError:
        raise XmlError("bad_xml", str(first)) from None


def _fromstring(text: str) -> Element:
    try:
        return fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise XmlError("forbidden", type(exc).__name__) from None


def _node(elem: Element, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise XmlError("too_deep", f"more than {MAX_DEPTH} levels")
    tag = elem.tag.rsplit("}", 1)[-1].lower()
    return Node(tag, (elem.text or "").strip(), {k.lower(): v for k, v in elem.attrib.items()},
                [_node(c, depth + 1) for c in elem])


def build(kind: str, cmd: str, sn: int, device_id: str, fields: list[tuple[str, object]] | None = None,
          encoding: str = "GB2312") -> bytes:
    """``<Kind><CmdType/><SN/><DeviceID/>…fields…</Kind>``; nested fields are lists of pairs;
    a key ``'Tag Attr="v"'`` keeps its attributes on the opening tag only."""
    body = f"<CmdType>{escape(cmd)}</CmdType>\n<SN>{sn}</SN>\n<DeviceID>{escape(device_id)}</DeviceID>\n"
    body += _fields(fields or [])
    text = f'<?xml version="1.0" encoding="{encoding}"?>\n<{kind}>\n{body}</{kind}>\n'
    codec = "utf-8" if encoding.lower().replace("-", "") == "utf8" else "gb18030"
    return text.encode(codec)


def _fields(items: list[tuple[str, object]]) -> str:
    out = []
    for key, value in items:
        tag = key.split(" ", 1)[0]
        if isinstance(value, list):
            out.append(f"<{key}>\n{_fields(value)}</{tag}>\n")
        else:
            out.append(f"<{key}>{escape(str(value))}</{tag}>\n")
    return "".join(out)
