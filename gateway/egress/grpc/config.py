"""The ``[grpc]`` section: mTLS by default; plaintext only when explicitly configured."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import ConfigError, section


@section("grpc")
@dataclass(slots=True)
class GrpcConfig:
    enabled: bool = False  # off unless configured: every listening port authenticates
    host: str = "127.0.0.1"
    port: int = 50051
    cert: str = ""  # server certificate chain (PEM)
    key: str = ""  # server private key (PEM)
    client_ca: str = ""  # CA that signs platform client certificates (PEM)
    require_client_cert: bool = True  # mTLS; false allows bearer-token-only clients over TLS
    allow_tokens: bool = True  # accept `authorization: Bearer …` metadata per call
    plaintext: bool = False  # local development only: no TLS at all, tokens required
    max_message_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.enabled and not self.plaintext and not (self.cert and self.key):
            raise ConfigError("grpc.cert: TLS needs grpc.cert and grpc.key (or set grpc.enabled = false, "
                              "or grpc.plaintext = true for local development)")
        if self.enabled and self.plaintext and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigError("grpc.plaintext: only on a loopback grpc.host (video and tokens would cross the "
                              "network in the clear)")
        if self.enabled and not self.plaintext and self.require_client_cert and not self.client_ca:
            raise ConfigError("grpc.client_ca: mTLS needs the CA that signs client certificates")
