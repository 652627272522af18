"""The gateway process: storage, bus, channel registry, hub, policy gate, HTTP, and the parts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import importlib
import logging
import secrets
from typing import Any

from aiohttp import web

from adapters.base import Adapter
from gateway import __version__
from gateway.bus import Bus, LocalBus, StreamState
from gateway.config import BusConfig, Config, HttpConfig, MediaConfig, NodeConfig, StorageConfig
from gateway.http.auth import Authenticator, StaticTokens
from gateway.http.server import create_app
from gateway.media import AccessUnit, Hub, ReaderLimits, Stream, parse_key
from gateway.metrics import Metrics
from gateway.parts import PARTS
from gateway.audit.chain import ChainAudit, load_or_create_key
from gateway.config import ConfigError
from gateway.identity.service import Identity, IdentityConfig
from gateway.policy import Resource, Subject
from gateway.policy.gate import TieredGate
from gateway.policy.sessions import VideoSessions
from gateway.registry import ChannelRegistry
from gateway.storage import Database

log = logging.getLogger(__name__)
Hook = Callable[[], Awaitable[None]]


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.version = __version__
        node = config.get(NodeConfig)
        self.node = node.name
        self.metrics = Metrics()
        self.db = Database(config.get(StorageConfig).url or f"sqlite+aiosqlite:///{config.data_path('vsgw.db')}")
        self.bus = _make_bus(config.get(BusConfig), self.node)
        self.registry = ChannelRegistry(self.db, self.bus, self.metrics)
        media = config.get(MediaConfig)
        self.reader_limits = ReaderLimits(media.reader_max_bytes, media.reader_max_delay)
        self.hub = Hub(self._open, linger=media.linger, on_state=self._stream_state)
        # the composition root of the controls: the durable audit chain, the tiered gate over it, and
        # the identities it decides for; nothing else is a gate, and there is no allow-all fallback
        self.audit = ChainAudit(self.db, load_or_create_key(config.data_path("keys", "audit-ed25519.pem")))
        self.policy = TieredGate(self.audit, node.zone)
        self.sessions = VideoSessions(self.audit)  # open video sessions, each closed when its grant ends
        self.identity = Identity(self.db, config.get(IdentityConfig))
        self.certificate_subject: Callable[[str], Subject | None] = self.identity.certificate_subject
        # recorded footage (the recording part sets it): open_playback / ranges over stored segments
        self.recordings: Any = None
        self.grpc: Any = None  # the gRPC egress when enabled (its bound port: gw.grpc.port)
        self.resource_resolver: Callable[[str], Resource] = lambda cid: Resource("camera", cid)
        http = config.get(HttpConfig)
        self.tokens = list(http.tokens) or [self._stored_token()]
        self.authenticators: list[Authenticator] = [StaticTokens(self.tokens), self.identity.authenticate]
        self.app, self.api = create_app(self)
        self.adapters: list[Adapter] = []
        self.on_start: list[Hook] = []
        self.on_stop: list[Hook] = []
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self.app_host = http.host
        self.links: list[tuple[str, str]] = [("API token", "{token}"), ("Cameras (JSON)", "{base}/api/cameras?access_token={token}"),
                                             ("One camera with live stats", "{base}/api/cameras/{camera}?access_token={token}"),
                                             ("Events (SSE)", "{base}/api/events?access_token={token}"),
                                             ("Metrics", "{base}/metrics?access_token={token}"),
                                             ("OpenAPI", "{base}/api/openapi.json?access_token={token}")]
        self.metrics.collector(self._stream_metrics)
        for part in PARTS:
            importlib.import_module(part).setup(self)

    # -- assembly -------------------------------------------------------------------
    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters.append(adapter)

    def demo_links(self, base: str, token: str, camera: str) -> list[str]:
        """What the demo prints; parts add their pages to ``self.links``."""
        return [f"  {label:28} {url.format(base=base, token=token, camera=camera)}" for label, url in self.links]

    def camera_resource(self, channel_id: str) -> Resource:
        return self.resource_resolver(channel_id)

    def _stored_token(self) -> str:
        path = self.config.data_path("api-token")
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(24)
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        if not isinstance(self.policy, TieredGate) or not isinstance(self.audit, ChainAudit):
            raise ConfigError("refusing to start: the policy gate or the audit chain was replaced (fail closed)")
        ran = await self.db.migrate()
        for step in ran:
            log.info("migrated %s", step)
        await self.bus.start()
        self.sessions.started()
        await self.registry.start()
        for adapter in self.adapters:
            await adapter.start(self.registry.context(adapter))
        for hook in self.on_start:
            await hook()
        http = self.config.get(HttpConfig)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, http.host, http.port)
        await site.start()
        self.http_port = self._runner.addresses[0][1]
        log.info("HTTP on http://%s:%s", http.host, self.http_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.sessions.stop()
        for hook in reversed(self.on_stop):
            try:
                await hook()
            except Exception:
                log.exception("stop hook failed")
        await self.hub.close()
        for adapter in self.adapters:
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter %s failed to stop", adapter.kind)
        await self.registry.stop()
        await self.bus.stop()
        await self.db.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # -- media ----------------------------------------------------------------------
    def _open(self, key: str) -> AsyncIterator[AccessUnit]:
        channel_id, substream = parse_key(key)
        return self.registry.adapter_for(channel_id).open(channel_id, substream)

    def _stream_state(self, stream: Stream, running: bool, reason: str | None) -> None:
        self.bus.publish(StreamState(key=stream.key, running=running, reason=reason))
        if not running:
            self.metrics.inc("vsgw_stream_failures_total", stream=stream.key)

    def _stream_metrics(self):  # noqa: ANN202
        for key, stream in self.hub.streams.items():
            s = stream.stats()
            labels = (("stream", key),)
            yield "vsgw_stream_fps", labels, s.fps
            yield "vsgw_stream_bitrate_bps", labels, s.bitrate
            yield "vsgw_stream_readers", labels, s.readers
            yield "vsgw_stream_reader_skips", labels, s.skips
            yield "vsgw_stream_units", labels, s.units
        yield "vsgw_channels", (), len(self.registry.channels)
        yield "vsgw_channels_online", (), sum(c.online for c in self.registry.channels.values())


def _make_bus(cfg: BusConfig, node: str) -> Bus:
    if cfg.kind == "local":
        return LocalBus(node)
    if cfg.kind == "zmq":
        from gateway.bus.zmq import ZmqBus

        return ZmqBus(node, cfg.xsub, cfg.xpub, run_proxy=cfg.proxy)
    from gateway.config import ConfigError

    raise ConfigError(f"bus.kind: expected 'local' or 'zmq', got {cfg.kind!r}")
