"""Where an RTSP camera is and how to log in, kept apart from how it may be displayed.

Credentials come from the camera's ``username``/``password`` config keys, else from the URL's
userinfo. :attr:`Target.display` is the sanitised URL: no userinfo, and secret-looking query
values redacted, so it is safe for logs, errors, the registry and ``/api/cameras``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from gateway.config import CameraConfig

from .errors import BadUrl

DEFAULT_PORT = 554
TRANSPORTS = ("tcp", "udp")
SECRET_QUERY_KEYS = ("pass", "pwd", "token", "key", "secret", "auth", "sig", "user")


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    path: str  # path plus query, as sent on the wire
    transport: str = "tcp"
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def request_url(self) -> str:
        """The URL in RTSP request lines: no userinfo."""
        return f"rtsp://{self.netloc}{self.path}"

    @property
    def display(self) -> str:
        path, _, query = self.path.partition("?")
        if query:
            pairs = [(k, "***" if any(s in k.lower() for s in SECRET_QUERY_KEYS) else v)
                     for k, v in parse_qsl(query, keep_blank_values=True)]
            path += "?" + urlencode(pairs, safe="*")
        return f"rtsp://{self.netloc}{path}"

    def with_credentials(self) -> str:
        """For FFmpeg only; never log or show it."""
        if not self.username:
            return self.request_url
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return f"rtsp://{userinfo}{self.netloc}{self.path}"


def parse_target(cam: CameraConfig) -> Target:
    """Validate a camera's URL and transport; errors never echo the URL (it may hold a password)."""
    if cam.transport not in TRANSPORTS:
        raise BadUrl(f"camera {cam.id}: transport must be 'tcp' or 'udp', got {cam.transport!r}")
    try:
        parts = urlsplit(cam.url.strip())
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise BadUrl(f"camera {cam.id}: url has an invalid port; expected rtsp://host[:port]/path") from None
    if parts.scheme.lower() != "rtsp" or not parts.hostname:
        raise BadUrl(f"camera {cam.id}: url must look like rtsp://host[:port]/path")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        host=parts.hostname,
        port=port,
        path=path,
        transport=cam.transport,
        username=cam.username or unquote(parts.username or ""),
        password=cam.password or unquote(parts.password or ""),
    )
