"""Digest nonces the SIP server issues and checks (R18).

A nonce is random, remembered by the server with the device ID and the transport it was issued
to, good for one answer, and expires. An Authorization captured on the wire is therefore useless
from another socket, for another device, a second time, or later: each refusal has its own reason
for the metrics. Spent nonces are kept until they expire, so a replay is told apart from a nonce
the server never issued (or issued before a restart). Memory is bounded by ``limit``: beyond it the
oldest nonces go first.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .transport import Peer

LIFETIME = 60.0  # a device answers a 401 at once; this leaves room for a slow one
LIMIT = 100_000  # a registration storm of every device at once stays well inside


@dataclass(slots=True)
class _Issued:
    device_id: str
    peer: Peer
    expires: float
    spent: bool = False


class Nonces:
    def __init__(self, lifetime: float = LIFETIME, limit: int = LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self.clock = clock
        self._issued: OrderedDict[str, _Issued] = OrderedDict()

    def __len__(self) -> int:
        return len(self._issued)

    def issue(self, device_id: str, peer: Peer) -> str:
        now = self.clock()
        self._purge(now)
        nonce = secrets.token_hex(16)
        self._issued[nonce] = _Issued(device_id, peer, now + self.lifetime)
        return nonce

    def take(self, nonce: str, device_id: str, peer: Peer) -> str | None:
        """Use up ``nonce`` for ``device_id`` answering from ``peer``: None if that is allowed,
        else why not. A nonce shown for the wrong device or source is spent too (it was seen)."""
        entry = self._issued.get(nonce)
        if entry is None:
            return "nonce_unknown"
        if entry.spent:
            return "nonce_replayed"
        entry.spent = True
        if self.clock() >= entry.expires:
            return "nonce_expired"
        if entry.device_id != device_id:
            return "nonce_other_device"
        if entry.peer != peer:
            return "nonce_other_source"
        return None

    def _purge(self, now: float) -> None:
        issued = self._issued
        while issued:
            nonce, entry = next(iter(issued.items()))
            if entry.expires > now and len(issued) < self.limit:
                return
            del issued[nonce]
