"""The witness outside the database (R10): every signed checkpoint is appended to a file, one JSON
line each, and optionally published to a URL. Someone who can rewrite the database can then no
longer rewrite or cut the trail unseen: ``vsgw audit verify --witness FILE`` compares the two.

The file is opened with O_APPEND for each checkpoint and fsynced before the append returns, so a
line once written survives a crash and a restart simply appends after it. Publishing is
best-effort: a slow or absent receiver costs counted failures, never a delayed audit record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from gateway.metrics import Metrics

log = logging.getLogger(__name__)
QUEUE = 1000  # checkpoints waiting for publication; beyond this they are dropped and counted
_HEX64 = re.compile(r"[0-9a-f]{64}")


class WitnessError(ValueError):
    """A witness line that is not a checkpoint: the file was edited, or is not a witness."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One witnessed checkpoint: what was signed, and the signature."""

    seq: int
    hash: str
    time: str
    every: int
    kind: str
    signature: str

    def line(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def parse(cls, text: str) -> Entry:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WitnessError(f"not JSON ({exc.msg})") from None
        if not isinstance(raw, dict) or set(raw) != {"seq", "hash", "time", "every", "kind", "signature"}:
            raise WitnessError("not a checkpoint line")
        ints = all(isinstance(raw[k], int) and not isinstance(raw[k], bool) for k in ("seq", "every"))
        strs = all(isinstance(raw[k], str) for k in ("hash", "time", "kind", "signature"))
        if not ints or not strs or not _HEX64.fullmatch(raw["hash"]):
            raise WitnessError("a field has the wrong type")
        return cls(**raw)


def read_witness(path: Path) -> tuple[list[tuple[int, Entry]], bool]:
    """(line number, entry) for each line, and whether the last line was cut short by a crash
    (no newline, not parseable: the write never completed, so it is not counted)."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    torn = False
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:  # an unterminated last line: complete, or torn by a crash mid-write
        try:
            Entry.parse(lines[-1])
        except WitnessError:
            lines.pop()
            torn = True
    entries: list[tuple[int, Entry]] = []
    for number, line in enumerate(lines, start=1):
        try:
            entries.append((number, Entry.parse(line)))
        except WitnessError as exc:
            raise WitnessError(f"line {number}: {exc}") from None
    return entries, torn


class Witness:
    """The file witness, and the publisher when a URL is configured."""

    def __init__(self, path: Path, metrics: Metrics, url: str = "", timeout: float = 5.0) -> None:
        self.path = path
        self.metrics = metrics
        self.publisher = Publisher(url, timeout, metrics) if url else None
        metrics.describe("vsgw_audit_witness_lines_total", "counter", "checkpoints appended to the witness file")
        metrics.describe("vsgw_audit_witness_write_failures_total", "counter",
                         "checkpoints the witness file could not take (they stay signed in the database)")

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.publisher is not None:
            self.publisher.start()

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.stop()

    async def append(self, entries: list[Entry]) -> None:
        """Append and fsync; a failure is logged and counted, the audit record is already durable."""
        try:
            await asyncio.to_thread(self._write, b"".join(e.line() for e in entries))
            self.metrics.inc("vsgw_audit_witness_lines_total", len(entries))
        except OSError as exc:
            log.error("audit witness %s: cannot append checkpoint %d: %s", self.path, entries[-1].seq, exc.strerror)
            self.metrics.inc("vsgw_audit_witness_write_failures_total", len(entries))
        if self.publisher is not None:
            for entry in entries:
                self.publisher.offer(entry)

    def _write(self, blob: bytes) -> None:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # the new directory entry must survive a crash too
            dirfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)


class Publisher:
    """POSTs each checkpoint line to a receiver from its own task, one at a time, in order."""

    def __init__(self, url: str, timeout: float, metrics: Metrics) -> None:
        self.url, self.timeout, self.metrics = url, timeout, metrics
        self._queue: asyncio.Queue[Entry] = asyncio.Queue(maxsize=QUEUE)
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        metrics.describe("vsgw_audit_witness_published_total", "counter", "checkpoints the witness URL accepted")
        metrics.describe("vsgw_audit_witness_publish_failures_total", "counter",
                         "checkpoints not published to the witness URL, by reason")

    def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-witness-publish")

    def offer(self, entry: Entry) -> None:
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self._failed("queue_full")

    async def stop(self) -> None:
        """Give what is queued one timeout to go out; what is left is counted as not sent."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._queue.join()
        except TimeoutError:
            pass
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._queue.qsize():
            self._failed("not_sent", self._queue.qsize())
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        assert self._http is not None
        while True:
            entry = await self._queue.get()
            try:
                async with self._http.post(self.url, data=entry.line(),
                                           headers={"Content-Type": "application/json"}) as resp:
                    if resp.status < 300:
                        self.metrics.inc("vsgw_audit_witness_published_total")
                    else:
                        self._failed("status")
            except TimeoutError:
                self._failed("timeout")
            except aiohttp.ClientError:
                self._failed("unreachable")
            finally:
                self._queue.task_done()

    def _failed(self, reason: str, count: int = 1) -> None:
        # the URL is not logged: it may carry the receiver's credentials
        log.warning("audit witness publication failed (%s)", reason)
        self.metrics.inc("vsgw_audit_witness_publish_failures_total", count, reason=reason)
