"""Who is calling: the mTLS certificate's common name, or a bearer token in the metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from gateway.policy import Subject

if TYPE_CHECKING:
    from gateway.app import Gateway


@dataclass(frozen=True, slots=True)
class Peer:
    """What the HTTP authenticators read from a request (``.remote``), for gRPC calls."""

    remote: str | None


def _address(peer: str) -> str:
    # "ipv4:127.0.0.1:5555" / "ipv6:[::1]:5555"
    kind, _, rest = peer.partition(":")
    return rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else peer


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a call is from: the subject the gate decides for, and the user a token names under a
    platform's certificate (which may only narrow what the certificate allows)."""

    subject: Subject
    on_behalf_of: Subject | None = None


async def caller_of(gw: Gateway, context: grpc.aio.ServicerContext, allow_tokens: bool) -> Caller:
    """Authenticate the call, or abort with UNAUTHENTICATED (R18).

    A client certificate must be a registered platform client, and then it is the subject whatever
    token comes with it; a valid bearer token beside it narrows it (``on_behalf_of``), an invalid one
    fails the call. Without a certificate a token is the subject, where tokens are allowed."""
    address = _address(context.peer())
    token = await _token_subject(gw, context, address)
    names = (context.auth_context() or {}).get("x509_common_name") or []
    if names:
        cn = names[0].decode("utf-8", "replace")
        subject = gw.certificate_subject(cn)
        if subject is None:
            gw.metrics.inc("vsgw_grpc_rejected_total", reason="unknown_certificate")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"certificate {cn!r} is not a registered platform client")
        return Caller(Subject(**{**_fields(subject), "address": address}), token)  # type: ignore[arg-type]
    if token is not None and allow_tokens:
        return Caller(token)
    gw.metrics.inc("vsgw_grpc_rejected_total", reason="unauthenticated")
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a registered client certificate is required"
                        if not allow_tokens else "a client certificate or a bearer token is required")
    raise AssertionError("unreachable")


async def _token_subject(gw: Gateway, context: grpc.aio.ServicerContext, address: str) -> Subject | None:
    """The subject of the call's bearer token; None without one; abort for an invalid one."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            for auth in gw.authenticators:
                subject = await auth(value[7:].strip(), Peer(address))  # type: ignore[arg-type]
                if subject is not None:
                    return subject
            gw.metrics.inc("vsgw_grpc_rejected_total", reason="bad_token")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not valid")
    return None


def _fields(subject: Subject) -> dict:
    return {name: getattr(subject, name) for name in subject.__dataclass_fields__}
