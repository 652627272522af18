"""Which local addresses aioice offers as ICE host candidates.

aioice enumerates interfaces itself and always leaves out 127.0.0.1, so a loopback-only
deployment (tests, a demo on one machine) cannot connect. aioice looks the function up as a
module global when it gathers, so replacing ``aioice.ice.get_host_addresses`` is the one
documented hook; it is process-wide, which matches the one-gateway-per-process model.
"""

from __future__ import annotations

import aioice.ice

_ORIGINAL = aioice.ice.get_host_addresses


def limit_host_addresses(addresses: list[str]) -> None:
    """Offer exactly ``addresses`` (empty: restore aioice's own interface scan)."""
    if not addresses:
        aioice.ice.get_host_addresses = _ORIGINAL
        return
    fixed = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses
