"""A minimal asyncio RTSP client for DESCRIBE: the pre-flight check before pulling, and the light
periodic probe of cameras nobody watches.

It gives typed, credential-free errors (unreachable, 401, 404, unsupported codec) that FFmpeg
would only report as opaque strings, and costs one request/response (two with auth).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
import hashlib
import os
import re

from gateway.media import H264, H265

from .errors import CannotConnect, NotFound, RtspError, Unauthorized, UnsupportedCodec
from .target import Target

USER_AGENT = "vsgw"
MAX_BODY = 64 * 1024
CODEC_NAMES = {"H264": H264, "H265": H265, "HEVC": H265}
STATIC_PAYLOADS = {26: "mjpeg", 31: "h261", 32: "mpv", 34: "h263"}
FFMPEG_NAMES = {"JPEG": "mjpeg", "MP4V-ES": "mpeg4"}


@dataclass(frozen=True, slots=True)
class Description:
    codec: str  # H264 or H265
    sdp: str


async def describe(target: Target, timeout: float = 10.0) -> Description:
    """DESCRIBE the camera; return its video codec or raise an :class:`RtspError`."""
    try:
        return await asyncio.wait_for(_describe(target), timeout)
    except TimeoutError:
        raise CannotConnect(f"cannot connect to {target.netloc}: no answer within {timeout:g} s") from None


async def _describe(target: Target) -> Description:
    try:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    except ConnectionRefusedError:
        raise CannotConnect(f"cannot connect to {target.netloc}: connection refused") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CannotConnect(f"cannot connect to {target.netloc}: {why.lower()}") from None
    try:
        status, headers, body = await _request(reader, writer, target, 1, None)
        if status == 401 and target.username:
            challenge = headers.get("www-authenticate", "")
            status, headers, body = await _request(reader, writer, target, 2, _authorization(target, challenge))
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        raise RtspError(f"{target.netloc} did not answer like an RTSP server") from None
    finally:
        writer.close()
    if status == 401:
        if target.username:
            raise Unauthorized("401 Unauthorized: check username/password")
        raise Unauthorized("401 Unauthorized: the camera needs a username and password")
    if status == 404:
        raise NotFound(f"404 Not Found: no stream at {target.path.partition('?')[0]} on {target.netloc}")
    if status != 200:
        raise RtspError(f"DESCRIBE refused by {target.netloc}: status {status}")
    sdp = body.decode("utf-8", "replace")
    return Description(video_codec(sdp), sdp)


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target, cseq: int, auth: str | None
) -> tuple[int, dict[str, str], bytes]:
    lines = [f"DESCRIBE {target.request_url} RTSP/1.0", f"CSeq: {cseq}", "Accept: application/sdp",
             f"User-Agent: {USER_AGENT}"]
    if auth:
        lines.append(f"Authorization: {auth}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    proto, code, *_ = status_line.split(" ", 2)
    if not proto.startswith("RTSP/"):
        raise ValueError("not RTSP")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            # keep every challenge: a camera may offer Digest and Basic in two headers
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    length = min(int(headers.get("content-length", "0")), MAX_BODY)
    body = await reader.readexactly(length) if length else b""
    return int(code), headers, body


def _authorization(target: Target, challenge: str) -> str:
    """Digest (RFC 2617, MD5) when offered, else Basic."""
    digest = re.search(r"Digest\s+(.*?)(?=,?\s*Basic\b|$)", challenge, re.I | re.S)
    if digest:
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', digest.group(1)))
        realm, nonce = params.get("realm", ""), params.get("nonce", "")
        uri = target.request_url
        ha1 = _md5(f"{target.username}:{realm}:{target.password}")
        ha2 = _md5(f"DESCRIBE:{uri}")
        fields = [f'username="{target.username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        if "auth" in params.get("qop", "").split(","):
            cnonce, nc = os.urandom(8).hex(), "00000001"
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        if "opaque" in params:
            fields.append(f'opaque="{params["opaque"]}"')
        return "Digest " + ", ".join(fields + [f'response="{response}"'])
    token = base64.b64encode(f"{target.username}:{target.password}".encode()).decode()
    return f"Basic {token}"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RTSP digest is MD5 by definition


def video_codec(sdp: str) -> str:
    """The first video stream's codec as H264/H265, or :class:`UnsupportedCodec` naming it."""
    media = re.search(r"^m=video\s+\d+\s+\S+\s+(\d+)", sdp, re.M)
    if media is None:
        raise UnsupportedCodec("the camera offers no video stream; H.264 or H.265 only")
    pt = int(media.group(1))
    section = sdp[media.start():]
    rtpmap = re.search(rf"^a=rtpmap:{pt}\s+([^/\s]+)", section, re.M)
    if rtpmap is None:
        name = STATIC_PAYLOADS.get(pt, f"payload type {pt}")
    else:
        encoding = rtpmap.group(1).upper()
        if encoding in CODEC_NAMES:
            return CODEC_NAMES[encoding]
        name = FFMPEG_NAMES.get(encoding, encoding.lower())
    raise UnsupportedCodec(f"codec {name} is not supported; H.264 or H.265 only")
