"""Assembly of the audit trail from ``[audit]``: its checkpoint interval and its witness outside
the database. ``setup(gw)`` configures ``gw.audit`` (the chain) before the gateway starts it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .chain import ChainAudit
from .config import AuditConfig
from .witness import Witness

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.config import Config

__all__ = ["AuditConfig", "setup", "witness_path"]


def witness_path(config: Config) -> Path:
    """Where the witness file is: ``audit.witness_path``, else in the data directory."""
    cfg = config.get(AuditConfig)
    return Path(cfg.witness_path) if cfg.witness_path else config.data_path("audit-witness.jsonl")


def setup(gw: Gateway) -> None:
    cfg = gw.config.get(AuditConfig)
    audit = gw.audit
    if not isinstance(audit, ChainAudit):
        raise TypeError("the audit part configures the hash-chained trail; gw.audit is something else")
    witness = Witness(witness_path(gw.config), gw.metrics, cfg.witness_url, cfg.witness_timeout)
    audit.configure(cfg.checkpoint_every, cfg.checkpoint_seconds, witness)
