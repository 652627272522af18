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


async def subject_of(gw: Gateway, context: grpc.aio.ServicerContext, allow_tokens: bool) -> Subject:
    """The caller's subject, or abort with UNAUTHENTICATED."""
    address = _address(context.peer())
    if allow_tokens:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
                for auth in gw.authenticators:
                    subject = await auth(value[7:].strip(), Peer(address))  # type: ignore[arg-type]
                    if subject is not None:
                        return subject
                gw.metrics.inc("vsgw_grpc_rejected_total", reason="bad_token")
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not valid")
    names = (context.auth_context() or {}).get("x509_common_name") or []
    if names:
        cn = names[0].decode("utf-8", "replace")
        subject = gw.certificate_subject(cn)
        if subject is not None:
            return Subject(**{**_fields(subject), "address": address})
        gw.metrics.inc("vsgw_grpc_rejected_total", reason="unknown_certificate")
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"certificate {cn!r} is not a registered platform client")
    gw.metrics.inc("vsgw_grpc_rejected_total", reason="unauthenticated")
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a client certificate or a bearer token is required")
    raise AssertionError("unreachable")


def _fields(subject: Subject) -> dict:
    return {name: getattr(subject, name) for name in subject.__dataclass_fields__}
