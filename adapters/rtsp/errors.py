"""Typed RTSP failures. Messages name host:port and path at most — never credentials or userinfo."""

from __future__ import annotations


class RtspError(Exception):
    """An RTSP camera could not be pulled; ``reason`` is the metric label."""

    reason = "rtsp_error"


class BadUrl(RtspError):
    reason = "bad_url"


class CannotConnect(RtspError):
    reason = "unreachable"


class Unauthorized(RtspError):
    reason = "unauthorized"


class NotFound(RtspError):
    reason = "not_found"


class UnsupportedCodec(RtspError):
    reason = "unsupported_codec"


class StreamLost(RtspError):
    """The stream started and then died (camera closed it, went silent, or sent garbage)."""

    reason = "stream_lost"
