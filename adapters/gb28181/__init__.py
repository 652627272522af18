"""GB/T 28181 device access: SIP signalling, MANSCDP, PS/RTP media (R1).

``[sip] enabled = true`` starts the SIP server (UDP+TCP); devices and lower platforms register to
it and their channels join the registry. ``vsgw gb-sim`` runs a simulated device against it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.config import ConfigError, NodeConfig

from .config import SipConfig

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["SipConfig", "setup"]


def setup(gw: Gateway) -> None:
    _log_level(gw)
    cfg = gw.config.get(SipConfig)
    if not cfg.enabled:
        return
    from .adapter import GbAdapter
    from .web import add_routes
    from .web_control import add_routes as add_control_routes

    adapter = GbAdapter(cfg, gw.metrics, gw.db)
    gw.add_adapter(adapter)
    gw.gb28181 = adapter  # type: ignore[attr-defined]  # the demo and tests find the SIP port here
    add_routes(gw, adapter)
    add_control_routes(gw, adapter)


def _log_level(gw: Gateway) -> None:
    """``[node] log_level`` for the GB/T 28181 loggers; DEBUG adds the INVITE transactions' messages in full."""
    level = gw.config.get(NodeConfig).log_level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"node.log_level: unknown level {level!r} (expected DEBUG, INFO, WARNING or ERROR)")
    logging.getLogger(__name__).setLevel(level)
