"""Audit trail contract (R10, R16, R18). ``Gateway.audit`` is the sink in force; the policy
issue supplies the durable, hash-chained one. Every gate decision and every evidence action
(lock, unlock, export, retrieval step) is recorded through it."""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger("vsgw.audit")


class AuditSink(Protocol):
    async def record(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        decision: str,
        reason: str = "",
        address: str | None = None,
        request_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None: ...


class LogAudit:
    """Foundation stand-in: audit records go to the log only (not durable, not chained)."""

    async def record(self, *, actor: str, action: str, resource: str, decision: str, reason: str = "",
                     address: str | None = None, request_id: str | None = None,
                     extra: dict[str, Any] | None = None) -> None:
        log.info("audit actor=%s action=%s resource=%s decision=%s reason=%s", actor, action, resource, decision, reason)
