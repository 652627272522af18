"""gRPC egress for the police image platform (R1): ``vsgw.v1`` over mTLS, with health
checking and server reflection so standard tooling (grpcurl, grpc_health_probe) works."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc

from .config import GrpcConfig
from .malformed import MalformedRequests
from .services import CameraService, PtzService, StreamService

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
SERVICES = [d.full_name for d in pb.DESCRIPTOR.services_by_name.values()]


class GrpcEgress:
    def __init__(self, gw: Gateway, cfg: GrpcConfig) -> None:
        self.gw, self.cfg = gw, cfg
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    def credentials(self) -> grpc.ServerCredentials:
        cfg = self.cfg
        ca = Path(cfg.client_ca).read_bytes() if cfg.client_ca else None
        pair = (Path(cfg.key).read_bytes(), Path(cfg.cert).read_bytes())
        return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=cfg.require_client_cert)

    async def start(self) -> None:
        cfg = self.cfg
        opts = [("grpc.max_send_message_length", cfg.max_message_bytes),
                ("grpc.max_receive_message_length", 1024 * 1024)]
        server = grpc.aio.server(options=opts, interceptors=[MalformedRequests(self.gw.metrics)])
        allow_tokens = cfg.allow_tokens or cfg.plaintext
        rpc.add_CameraServiceServicer_to_server(CameraService(self.gw, allow_tokens), server)
        StreamService(self.gw, allow_tokens).add_to_server(server)
        rpc.add_PtzServiceServicer_to_server(PtzService(self.gw, allow_tokens), server)
        checker = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        for name in ("", *SERVICES):
            result = checker.set(name, health_pb2.HealthCheckResponse.SERVING)
            if hasattr(result, "__await__"):
                await result
        reflection.enable_server_reflection([*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        address = f"{cfg.host}:{cfg.port}"
        if cfg.plaintext:
            log.warning("gRPC on %s WITHOUT TLS (grpc.plaintext = true): local development only", address)
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, self.credentials())
        await server.start()
        self.server = server
        log.info("gRPC on %s (%s)", f"{cfg.host}:{self.port}", "plaintext" if cfg.plaintext else "mTLS")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=1.0)
            self.server = None


def setup(gw: Gateway) -> None:
    cfg = gw.config.get(GrpcConfig)
    if not cfg.enabled:
        return
    egress = GrpcEgress(gw, cfg)
    gw.grpc = egress
    gw.on_start.append(egress.start)
    gw.on_stop.append(egress.stop)
