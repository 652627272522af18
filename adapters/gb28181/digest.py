"""HTTP digest (RFC 2617, MD5) as GB/T 28181 REGISTER uses it: realm = the SIP domain (R1)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse_header(value: str) -> dict[str, str]:
    """``Digest username="…", nonce="…"`` → lower-cased parameter dict (empty if not Digest)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}


def response(username: str, realm: str, password: str, method: str, uri: str, nonce: str,
             qop: str | None = None, nc: str = "", cnonce: str = "") -> str:
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    if qop:
        return md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return md5(f"{ha1}:{nonce}:{ha2}")


def challenge(realm: str, nonce: str) -> str:
    return f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5'


def verify(auth: dict[str, str], password: str, method: str) -> bool:
    """Check an Authorization's response against ``password`` (constant-time)."""
    try:
        want = response(auth["username"], auth.get("realm", ""), password, method, auth["uri"], auth["nonce"],
                         auth.get("qop"), auth.get("nc", ""), auth.get("cnonce", ""))
    except KeyError:
        return False
    return hmac.compare_digest(want, auth.get("response", ""))


def authorization(challenge_value: str, username: str, password: str, method: str, uri: str) -> str:
    """The device side: answer a ``WWW-Authenticate`` challenge."""
    ch = parse_header(challenge_value)
    realm, nonce = ch.get("realm", ""), ch.get("nonce", "")
    qop = "auth" if "auth" in (ch.get("qop") or "").split(",") else None
    nc, cnonce = "00000001", secrets.token_hex(4)
    resp = response(username, realm, password, method, uri, nonce, qop, nc, cnonce)
    out = (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
           f'response="{resp}", algorithm=MD5')
    if qop:
        out += f', qop={qop}, nc={nc}, cnonce="{cnonce}"'
    return out
