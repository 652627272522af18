"""GB/T 28181 up-cascade: vsgw registers to superior platforms as a lower platform (R1, R2).

``[[cascade.superiors]]`` names each superior; every one gets its own SIP endpoint, registers with
digest, keeps alive and re-registers with backoff (:mod:`.registrar`), and answers the superior's
queries through the gate as the subject the superior is (:mod:`.requests`, :mod:`.catalog`).
State: ``GET /api/cascade/superiors``, ``vsgw_cascade_state{superior,state}``, ``cascade.state`` events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .config import CascadeConfig, Superior
from .events import CascadeState

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["CascadeConfig", "CascadeState", "Superior", "setup"]
STATES = ("idle", "registering", "registered", "failed", "stopped")


def setup(gw: Gateway) -> None:
    from .link import Link
    from .web import add_routes

    cfg = gw.config.get(CascadeConfig)
    links = [Link(gw, sup, cfg) for sup in cfg.parsed]
    gw.cascade = links  # type: ignore[attr-defined]  # tests and the demo find the links here
    add_routes(gw, links)
    if not links:
        return

    async def start() -> None:
        for link in links:
            await link.start()

    async def stop() -> None:
        for link in links:
            await link.stop()

    def states() -> Iterator[tuple[str, tuple[tuple[str, str], ...], float]]:
        for link in links:
            for state in STATES:
                yield ("vsgw_cascade_state", (("superior", link.sup.server_id), ("state", state)),
                       1.0 if link.status.state == state else 0.0)

    gw.on_start.append(start)
    gw.on_stop.append(stop)
    gw.metrics.describe("vsgw_cascade_state", "gauge", "1 for the state each superior link is in")
    gw.metrics.collector(states)
