"""SRTP protect for the fan-out's hot path: one C call per packet and nothing else.

``pylibsrtp.Session.protect`` is correct but spends more time in Python (type and length checks, a
fresh ``int *`` per call, an assert helper) than libsrtp spends encrypting. The fan-out makes every
packet itself, so its type is known; this closure keeps the length check (it guards libsrtp's
buffer), the copy in, the call and the copy out. It relies on the session's private buffer and
handle (pylibsrtp 0.x) and falls back to ``protect`` without them.
"""

from __future__ import annotations

from collections.abc import Callable

from pylibsrtp import Error, Session


def fast_protect(session: Session) -> Callable[[bytes], bytes]:
    try:
        from pylibsrtp import SRTP_MAX_TRAILER_LEN
        from pylibsrtp._binding import ffi, lib

        handle, cdata, buffer = session._srtp[0], session._cdata, session._buffer
    except (ImportError, AttributeError):  # another pylibsrtp layout: the public call
        return session.protect
    protect, length = lib.srtp_protect, ffi.new("int *")
    room = len(cdata) - SRTP_MAX_TRAILER_LEN  # what pylibsrtp reserves for the auth tag

    def fast(packet: bytes) -> bytes:
        size = len(packet)
        if size > room:
            raise ValueError("packet is too long")
        length[0] = size
        buffer[0:size] = packet
        if protect(handle, cdata, length):
            raise Error("srtp_protect failed")
        return buffer[0 : length[0]]

    fast.session = session  # type: ignore[attr-defined]  # keeps the handle alive with the closure
    return fast
