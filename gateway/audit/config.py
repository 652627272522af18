"""The ``[audit]`` section (R10, R18): how often the chain's head is signed, and where each signed
checkpoint is witnessed outside the database."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import ConfigError, section


@section("audit")
@dataclass(slots=True)
class AuditConfig:
    checkpoint_every: int = 1000  # records; the verifier fails a longer span without a signed checkpoint
    checkpoint_seconds: float = 60.0  # a signed head at least this often while records are written
    witness_path: str = ""  # append-only JSON lines, one per checkpoint; empty → <node.data_dir>/audit-witness.jsonl
    witness_url: str = ""  # each checkpoint is also POSTed here, best-effort (empty → not published)
    witness_timeout: float = 5.0  # seconds one publication may take

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1:
            raise ConfigError("audit.checkpoint_every: must be at least 1")
        if self.checkpoint_seconds <= 0:
            raise ConfigError("audit.checkpoint_seconds: must be positive")
        if self.witness_url and not self.witness_url.startswith(("http://", "https://")):
            raise ConfigError("audit.witness_url: expected an http:// or https:// URL")
        if self.witness_timeout <= 0:
            raise ConfigError("audit.witness_timeout: must be positive")
