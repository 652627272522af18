"""The parts a gateway is assembled from, in start order. Each module has ``setup(gw)``, which
may add routes (``gw.api``), adapters (``gw.add_adapter``) and start/stop hooks."""

PARTS: list[str] = [
    "gateway.http.web_core",
    "gateway.http.web_ptz",
    "gateway.policy.web",
    "gateway.audit.part",
    "catalog.web",
    "adapters.synthetic",
    "adapters.rtsp",
    "adapters.gb28181",
    "adapters.gb28181.cascade",
    "gateway.recording",
    "gateway.egress.grpc",
    "gateway.egress.webrtc",
]
