"""HTTP routes for managing GB/T 28181 devices."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.app import Gateway

    from .adapter import GbAdapter


def add_routes(gw: Gateway, adapter: GbAdapter) -> None:
    """Device management routes (none yet)."""
