"""SIP message codec (RFC 3261 subset GB/T 28181 uses): parse bytes into a message, build one back.

Parsing is strict about structure (start line, header syntax, Content-Length) and lenient about
case and compact header names, so a malformed datagram is rejected with :class:`SipError` and a
reason for the metrics, never an uncaught exception (R1). Every number a peer writes (CSeq,
Content-Length, Expires, Max-Forwards, ports in Via, ``rport``, Contact and the request URI) must
be ASCII digits inside its range: ``str.isdigit`` would also take ``'٣'`` or ``'²'`` (R18).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}
CANON = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "x-gb-ver": "X-GB-Ver",
         "max-forwards": "Max-Forwards"}
REASONS = {100: "Trying", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           481: "Call/Transaction Does Not Exist", 486: "Busy Here", 488: "Not Acceptable Here",
           500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable"}
MAX_MESSAGE = 256 * 1024
CSEQ_MAX = 2**31 - 1  # RFC 3261 §8.1.1.5
EXPIRES_MAX = 2**32 - 1  # the syntax's limit; the registrar bounds what it grants
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII only, unlike \d and str.isdigit
_URI_HOSTPORT = re.compile(r"sips?:(?:[^@;>\s]+@)?(\[[^\]]*\]|[^;>:\s?]+)(?::([^;>\s?]*))?")


class SipError(ValueError):
    """A message that is not valid SIP; ``reason`` is a short label for metrics. ``message`` is set
    when the headers parsed but a value in them is invalid: a request can then still be answered 400."""

    def __init__(self, reason: str, detail: str = "", message: SipMessage | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.message = message


def number(text: str | None, low: int, high: int, reason: str) -> int:
    """An ASCII decimal within [low, high]; SipError(reason) otherwise."""
    value = (text or "").strip()
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise SipError(reason, value[:20])
    return int(value)


@dataclass(slots=True)
class SipMessage:
    """A request (``method`` set) or a response (``status`` set). Headers keep order and repeats."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.headers if k.lower() == key]

    def set(self, name: str, value: str) -> None:
        key = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != key]
        self.headers.append((_canon(name), value))

    def add(self, name: str, value: str) -> None:
        self.headers.append((_canon(name), value))

    @property
    def call_id(self) -> str:
        return self.get("call-id", "") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.get("cseq") or "").split()
        if len(raw) != 2 or not _TOKEN.match(raw[1]):
            raise SipError("bad_cseq", self.get("cseq") or "")
        return number(raw[0], 0, CSEQ_MAX, "bad_cseq"), raw[1].upper()

    @property
    def branch(self) -> str:
        return param(self.get("via") or "", "branch") or ""

    def encode(self) -> bytes:
        first = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [first]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def _canon(name: str) -> str:
    low = name.lower()
    return CANON.get(low) or "-".join(p.capitalize() for p in low.split("-"))


def parse(data: bytes) -> SipMessage:
    """One complete message (a datagram or a framed TCP chunk)."""
    if len(data) > MAX_MESSAGE:
        raise SipError("too_large", str(len(data)))
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
        if not sep:
            raise SipError("no_header_end")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("gb18030", errors="strict") if _gb_ok(head) else None
        if text is None:
            raise SipError("bad_header_encoding") from None
    lines = text.replace("\r\n", "\n").split("\n")
    msg = _start_line(lines[0].strip())
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and msg.headers:  # folded continuation
            k, v = msg.headers[-1]
            msg.headers[-1] = (k, f"{v} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or not _TOKEN.match(name):
            raise SipError("bad_header", line[:60])
        name = COMPACT.get(name.lower(), name)
        msg.headers.append((_canon(name), value.strip()))
    for need in ("via", "call-id", "cseq", "from", "to"):
        if msg.get(need) is None:
            raise SipError("missing_header", need)
    try:
        msg.body = _checked_body(msg, body)
        _check_numbers(msg)
    except SipError as exc:
        exc.message = msg
        raise
    return msg


def _checked_body(msg: SipMessage, body: bytes) -> bytes:
    """The body as Content-Length delimits it (RFC 3261 §18.3: octets past it are discarded)."""
    lengths = {number(v, 0, MAX_MESSAGE, "bad_content_length") for v in msg.get_all("content-length")}
    if len(lengths) > 1:
        raise SipError("bad_content_length", "conflicting values")
    if not lengths:
        return body
    n = lengths.pop()
    if n > len(body):
        raise SipError("truncated_body", f"{len(body)}/{n}")
    return body[:n]


def _check_numbers(msg: SipMessage) -> None:
    _n, method = msg.cseq
    if msg.is_request and method != msg.method:
        raise SipError("bad_cseq", "method differs from the request line")
    for name, value in msg.headers:  # one pass: this runs for every keepalive
        check = _HEADER_CHECKS.get(name)
        if check is not None:
            check(value)
    if msg.uri:
        _check_uri_port(msg.uri, "bad_uri_port")


def _check_contacts(header: str) -> None:
    if header.strip() == "*":
        return
    for contact in header.split(","):
        _check_uri_port(contact, "bad_contact_port")
        if (expires := param(contact.rpartition(">")[2], "expires")) is not None:
            number(expires, 0, EXPIRES_MAX, "bad_expires")


def _check_vias(header: str) -> None:
    for via in header.split(","):
        _check_via(via)


def _check_via(via: str) -> None:
    """``SIP/2.0/UDP host[:port];rport[=port]``: both ports, when given, in 1–65535."""
    sent_by = via.strip().partition(";")[0].split(None, 1)
    if len(sent_by) != 2:
        raise SipError("bad_via", via[:60])
    hostport = sent_by[1].strip()
    port = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    if ":" in port:
        number(port.rpartition(":")[2], 1, 65535, "bad_via_port")
    rport = param(via, "rport")
    if rport:
        number(rport, 1, 65535, "bad_rport")


def _check_uri_port(value: str, reason: str) -> None:
    m = _URI_HOSTPORT.search(value)
    if m and m.group(2) is not None:
        number(m.group(2), 1, 65535, reason)


_HEADER_CHECKS = {  # by the canonical names parse() gives headers
    "Via": _check_vias,
    "Contact": _check_contacts,
    "Expires": lambda v: number(v, 0, EXPIRES_MAX, "bad_expires"),
    "Max-Forwards": lambda v: number(v, 0, 255, "bad_max_forwards"),
}


def _gb_ok(raw: bytes) -> bool:
    try:
        raw.decode("gb18030")
        return True
    except UnicodeDecodeError:
        return False


def _start_line(line: str) -> SipMessage:
    parts = line.split(" ", 2)
    if len(parts) < 2:
        raise SipError("bad_start_line", line[:60])
    if parts[0] == "SIP/2.0":
        try:
            status = number(parts[1], 100, 699, "bad_status")
        except SipError:
            raise SipError("bad_status", line[:60]) from None
        return SipMessage(status=status, reason=parts[2] if len(parts) > 2 else "")
    if len(parts) != 3 or parts[2] != "SIP/2.0" or not _TOKEN.match(parts[0]) or not parts[1]:
        raise SipError("bad_start_line", line[:60])
    return SipMessage(method=parts[0].upper(), uri=parts[1])


# -- header helpers ------------------------------------------------------------------------------
def param(header: str, name: str) -> str | None:
    """``;name=value`` from a header such as Via, To, From."""
    for part in header.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == name:
            return v.strip().strip('"')
    return None


def uri_user(value: str) -> str:
    """The user part of the first SIP URI in a header or request-URI: ``<sip:3402…@host>`` → ``3402…``."""
    m = re.search(r"sips?:([^@;>\s]+)@", value)
    return m.group(1) if m else ""


def uri_hostport(value: str) -> tuple[str, int] | None:
    """Host and port of the first SIP URI; None without one or with a port outside 1–65535."""
    m = _URI_HOSTPORT.search(value)
    if not m:
        return None
    try:
        port = number(m.group(2), 1, 65535, "bad_port") if m.group(2) is not None else 5060
    except SipError:
        return None
    return m.group(1).strip("[]"), port


def via_address(msg: SipMessage, source: tuple[str, int]) -> tuple[str, int]:
    """Where a response goes (RFC 3261 §18.2.2 + RFC 3581): the source address, at ``rport`` when
    the top Via gives a valid one."""
    rport = param(msg.get("via") or "", "rport")
    try:
        return source[0], number(rport, 1, 65535, "bad_rport") if rport else source[1]
    except SipError:
        return source



def new_tag() -> str:
    return secrets.token_hex(5)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def response(req: SipMessage, status: int, reason: str | None = None, *, to_tag: str | None = None,
             source: tuple[str, int] | None = None) -> SipMessage:
    """A response echoing Via/From/To/Call-ID/CSeq; stamps ``received``/``rport`` on the top Via."""
    out = SipMessage(status=status, reason=reason or REASONS.get(status, "Unknown"))
    vias = req.get_all("via")
    for i, via in enumerate(vias):
        if i == 0 and source is not None:
            via = _stamp_via(via, source)
        out.add("Via", via)
    out.add("From", req.get("from") or "")
    to = req.get("to") or ""
    if to_tag and param(to, "tag") is None:
        to = f"{to};tag={to_tag}"
    out.add("To", to)
    out.add("Call-ID", req.call_id)
    out.add("CSeq", req.get("cseq") or "")
    if req.get("x-gb-ver"):
        out.add("X-GB-Ver", req.get("x-gb-ver") or "")
    return out


def _stamp_via(via: str, source: tuple[str, int]) -> str:
    parts = via.split(";")
    out = [parts[0]]
    for p in parts[1:]:
        k = p.split("=")[0].strip().lower()
        if k == "rport":
            out.append(f"rport={source[1]}")
        elif k != "received":
            out.append(p)
    out.append(f"received={source[0]}")
    return ";".join(out)
