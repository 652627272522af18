"""RTSP cameras: H.264/H.265 over RTSP/TCP or RTSP/UDP with digest/basic auth (issue 2, R1, R15)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adapter import RtspAdapter
from .config import RtspConfig
from .errors import BadUrl, CannotConnect, NotFound, RtspError, StreamLost, Unauthorized, UnsupportedCodec

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["BadUrl", "CannotConnect", "NotFound", "RtspAdapter", "RtspConfig", "RtspError", "StreamLost",
           "Unauthorized", "UnsupportedCodec", "setup"]


def setup(gw: Gateway) -> None:
    cams = [c for c in gw.config.cameras if c.kind == "rtsp"]
    if cams:
        gw.add_adapter(RtspAdapter(cams, gw.config.get(RtspConfig), gw.metrics))
