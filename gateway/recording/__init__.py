"""Recording (R9, R10, R14): continuous recording with a 30-day floor, hash-chained segments,
evidence locks, playback, signed exports, public-release redaction, and the source-retention audit.

``setup(gw)`` assembles the part; ``gw.recordings`` is its playback face for other egress (gRPC).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import NodeConfig

from .config import RecordingConfig
from .export import Exports
from .locks import Locks
from .manifest import load_or_create_key
from .playback import Recordings
from .recorder import Recorder
from .retention import Retention, StorageGuard

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
__all__ = ["RecordingConfig", "RecordingPart", "setup"]


class RecordingPart:
    def __init__(self, gw: Gateway, cfg: RecordingConfig) -> None:
        data_dir = Path(gw.config.get(NodeConfig).data_dir)
        self.gw, self.cfg = gw, cfg
        self.root = Path(cfg.path) if cfg.path else data_dir / "recordings"
        self.key_path = data_dir / "keys" / "evidence-ed25519.pem"
        self.key = load_or_create_key(self.key_path)
        self.guard = StorageGuard(gw, cfg, self.root)
        self.locks = Locks(gw)
        self.retention = Retention(gw, cfg, self.root, self.locks, self.guard)
        self.recorder = Recorder(gw, cfg, self.root, self.guard)
        self.recordings = Recordings(gw, self.root, self.recorder, cfg)
        self.exports = Exports(gw, self.root, self.recordings, self.key, cfg.redact_every)
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        await self.guard.load()
        self.guard.check()
        await self.exports.start()
        await self.recorder.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="recording-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.recorder.stop()
        await self.exports.stop()

    async def _sweep_forever(self) -> None:
        while True:
            try:
                removed = await self.retention.sweep()
                if removed:
                    log.info("expired %d segments outside retention", removed)
            except Exception:
                log.exception("retention sweep failed; footage is kept until the next sweep")
            await asyncio.sleep(self.cfg.sweep_interval)


def setup(gw: Gateway) -> None:
    from .web import add_routes

    part = RecordingPart(gw, gw.config.get(RecordingConfig))
    gw.recordings = part.recordings
    gw.on_start.append(part.start)
    gw.on_stop.append(part.stop)
    add_routes(gw, part)
    gw.links.append(("Recorded ranges (timeline)", "{base}/api/recordings/{camera}/ranges?access_token={token}"))
