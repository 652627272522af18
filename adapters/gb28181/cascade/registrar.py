"""Our registration at one superior: REGISTER with digest, refresh before expiry, keepalive, and
re-registration with backoff (R1).

States: ``registering`` → ``registered``; a failed attempt is ``failed`` (with the reason) and is
retried after ``retry_min`` seconds, doubling per further failure up to ``retry_max`` (GB/T 28181
asks a lower platform not to retry sooner than 60 s). A registration is lost — and a new one tried
at once — when the superior refuses a keepalive (it restarted and forgot us), misses
``keepalive_misses`` keepalives in a row (it stopped answering), refuses a refresh, or the TCP
connection drops. A refresh goes out on the same Call-ID at three quarters of the granted expiry.
``stop`` unregisters (Expires 0) when registered. Every transition goes to ``on_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import digest, manscdp
from ..sip import EXPIRES_MAX, SipError, SipMessage, new_call_id, new_tag, number, param
from .config import Superior

if TYPE_CHECKING:
    from .link import Link

log = logging.getLogger(__name__)
REFRESH_AT = 0.75  # of the granted expiry
AUTH_ROUNDS = 2  # challenges answered per REGISTER before the digest counts as refused (a stale nonce gets one more)
UNREGISTER_TIMEOUT = 2.0


class RegisterFailed(Exception):
    """A REGISTER that did not end in 200; ``kind`` labels the failure metric."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


@dataclass(slots=True)
class Status:
    """What the API and the metrics show of one link (times are Unix seconds, 0 = never)."""

    state: str = "idle"  # idle | registering | registered | failed | stopped
    reason: str = ""
    since: float = 0.0
    registered_at: float = 0.0
    expires: int = 0  # granted by the superior
    next_refresh: float = 0.0
    next_attempt: float = 0.0
    last_keepalive: float = 0.0
    keepalive_misses: int = 0
    attempts: int = 0  # REGISTER attempts (refreshes included)
    registrations: int = 0  # those that succeeded
    failures: int = 0  # failed attempts in total
    consecutive_failures: int = 0


def _quoted(text: str) -> str:
    """A peer's reason phrase, safe for logs and the API: printable, short."""
    return "".join(c for c in text if c.isprintable())[:80]


class Registrar:
    def __init__(self, sup: Superior, link: Link, metrics: Any, on_change: Callable[[Status], None]) -> None:
        self.sup, self.link, self.metrics, self.on_change = sup, link, metrics, on_change
        self.status = Status(since=time.time())
        self._call_id, self._tag = "", ""
        self._cseq = itertools.count(1)
        self._sn = itertools.count(1)
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"cascade-{self.sup.server_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.status.state == "registered":
            with contextlib.suppress(RegisterFailed):
                await self._register(fresh=False, expires=0, timeout=UNREGISTER_TIMEOUT)
                self._count("unregister")
        self._set("stopped", "the gateway stopped")

    def connection_lost(self) -> None:
        self._lost.set()

    # -- the state machine -----------------------------------------------------------------
    async def _run(self) -> None:
        reason = "starting"
        while True:
            self._set("registering", reason)
            try:
                await self._register(fresh=True)
            except RegisterFailed as exc:
                delay = self._backoff()
                self.status.next_attempt = time.time() + delay
                self._set("failed", exc.reason)
                log.info("GB cascade %s: registration failed (%s); next attempt in %.1f s",
                         self.sup.label, exc.reason, delay)
                await asyncio.sleep(delay)
                reason = f"retrying after: {exc.reason}"
                continue
            self.status.consecutive_failures = 0
            self.status.next_attempt = 0.0
            self._set("registered", f"expires in {self.status.expires} s")
            log.info("GB cascade %s: registered as %s over %s, expires %d s", self.sup.label, self.sup.local_id,
                     self.sup.transport, self.status.expires)
            reason = await self._keep()
            log.info("GB cascade %s: registration lost (%s); registering again", self.sup.label, reason)

    def _backoff(self) -> float:
        n = self.status.consecutive_failures
        base = min(self.sup.retry_max, self.sup.retry_min * 2 ** (n - 1))
        return base * (1 + random.uniform(0, 0.1))  # spread retries of many links; never sooner than base

    def _set(self, state: str, reason: str) -> None:
        if state == self.status.state and reason == self.status.reason:
            return
        self.status.state, self.status.reason, self.status.since = state, reason, time.time()
        self.on_change(self.status)

    async def _keep(self) -> str:
        """Keep the registration alive; returns why it was lost."""
        sup, loop = self.sup, asyncio.get_running_loop()
        refresh_at = loop.time() + self.status.expires * REFRESH_AT
        next_keepalive = loop.time() + sup.keepalive_interval
        misses = 0
        self._lost.clear()
        while True:
            self.status.next_refresh = time.time() + (refresh_at - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(refresh_at, next_keepalive) - loop.time())):
                    await self._lost.wait()
            if self._lost.is_set():
                return "the TCP connection to the superior closed"
            if loop.time() >= refresh_at:
                try:
                    await self._register(fresh=False)
                except RegisterFailed as exc:
                    return f"refresh failed: {exc.reason}"
                refresh_at = loop.time() + self.status.expires * REFRESH_AT
                continue
            next_keepalive = loop.time() + sup.keepalive_interval
            refused = await self._keepalive()
            if refused is not None:
                return refused
            misses = self.status.keepalive_misses
            if misses >= sup.keepalive_misses:
                return f"the superior did not answer {misses} keepalives in a row"

    # -- messages ---------------------------------------------------------------------------
    async def _register(self, fresh: bool, expires: int | None = None, timeout: float | None = None) -> None:
        """One REGISTER to its 200 (digest answered on the way); RegisterFailed otherwise."""
        sup = self.sup
        if fresh:
            self._call_id, self._tag = new_call_id(sup.local_host), new_tag()
        want = sup.register_expires if expires is None else expires
        self.status.attempts += 1
        try:
            await self.link.ensure_transport()
            granted = await self._exchange(want, timeout)
        except RegisterFailed as exc:
            self.status.failures += 1
            self.status.consecutive_failures += 1
            self._count("failed")
            self.metrics.inc("vsgw_cascade_failures_total", superior=sup.server_id, kind=exc.kind)
            raise
        if want == 0:
            return
        self.status.registrations += 1
        self._count("ok" if fresh else "refresh")
        self.status.expires, self.status.registered_at = granted, time.time()
        self.status.keepalive_misses = 0

    async def _exchange(self, expires: int, timeout: float | None) -> int:
        authorization: str | None = None
        rounds = 0
        while True:
            req = self.link.register_request(self._call_id, self._tag, next(self._cseq), expires, authorization)
            try:
                resp = await self.link.request(req, timeout)
            except TimeoutError:
                raise RegisterFailed(f"no answer to REGISTER within {timeout or self.sup.request_timeout:g} s",
                                     "timeout") from None
            except (ConnectionError, OSError) as exc:
                raise RegisterFailed(f"cannot reach the superior ({type(exc).__name__})", "unreachable") from None
            status = resp.status or 0
            if status == 200:
                return self._granted(resp, expires)
            challenge = resp.get("www-authenticate") or ""
            if status == 401 and challenge and rounds < AUTH_ROUNDS + (param(challenge, "stale") == "true"):
                rounds += 1
                authorization = digest.authorization(challenge, self.sup.local_id, self.sup.password, "REGISTER",
                                                     req.uri or "")
                continue
            if status == 401:
                raise RegisterFailed("the superior keeps challenging our digest: wrong password or ID", "auth")
            if status == 403:
                raise RegisterFailed(f"the superior refused the registration: 403 {_quoted(resp.reason)} "
                                     "(wrong password, or our ID is unknown there)", "refused")
            if status == 423 and expires:
                floor = self._min_expires(resp)
                if floor > expires:
                    expires = floor
                    continue
            raise RegisterFailed(f"the superior answered REGISTER {status} {_quoted(resp.reason)}", "refused")

    def _granted(self, resp: SipMessage, asked: int) -> int:
        raw = resp.get("expires") or param((resp.get("contact") or "").rpartition(">")[2], "expires")
        try:
            return number(raw, 1, EXPIRES_MAX, "bad_expires") if raw else asked
        except SipError:
            return asked

    def _min_expires(self, resp: SipMessage) -> int:
        try:
            return number(resp.get("min-expires"), 1, EXPIRES_MAX, "bad_expires")
        except SipError:
            return 0

    async def _keepalive(self) -> str | None:
        """One keepalive; the reason the registration is gone when the superior refuses it."""
        body = manscdp.build("Notify", "Keepalive", next(self._sn), self.sup.local_id, [("Status", "OK")],
                             encoding=self.sup.charset)
        try:
            resp = await self.link.request(self.link.message(body))
        except TimeoutError:
            self.status.keepalive_misses += 1
            self._keepalive_count("timeout")
            return None
        except (ConnectionError, OSError) as exc:
            self._keepalive_count("unreachable")
            return f"cannot reach the superior ({type(exc).__name__})"
        if resp.status == 200:
            self.status.keepalive_misses = 0
            self.status.last_keepalive = time.time()
            self._keepalive_count("ok")
            return None
        self._keepalive_count("refused")
        return f"the superior refused a keepalive: {resp.status} {_quoted(resp.reason)}"

    def _count(self, result: str) -> None:
        self.metrics.inc("vsgw_cascade_registrations_total", superior=self.sup.server_id, result=result)

    def _keepalive_count(self, result: str) -> None:
        self.metrics.inc("vsgw_cascade_keepalives_total", superior=self.sup.server_id, result=result)
