"""Evidence export (R10) and public-release export (R14) as background jobs with progress.

An "original" export remuxes the recorded pictures into an MP4 without re-encoding, after checking
each source segment against its indexed SHA-256. A "public" export is the one allowed transcoding
path: it decodes, blurs faces and plates, and encodes before anything is written, and stays
"needs_review" until a reviewer approves it. Both get a signed manifest beside the MP4.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from fractions import Fraction
import logging
from pathlib import Path
import uuid
from typing import TYPE_CHECKING, Any

import av

from gateway.media import CLOCK_RATE, AccessUnit
from gateway.policy import Action, Subject, subject_access

from . import device_export
from .index import ExportRow, SegmentRow, iso, now, utc
from .locks import Denied, authorize_manage
from .manifest import write_manifest
from .playback import iter_range, picture_size
from .recorder import safe_name
from .redact import Redactor
from .segments import AV_CODEC, TIME_BASE, hash_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.app import Gateway

    from .playback import Recordings

log = logging.getLogger(__name__)
MODES = ("original", "public")
SOURCES = ("gateway", "device")
Progress = Callable[[float], None]
Written = tuple[Path, dict[str, Any], dict[str, Any]]  # the MP4, what the manifest lists, the row's detail


class IntegrityError(Exception):
    """A source segment no longer matches the hash it was indexed with (R10)."""


def export_json(row: ExportRow, progress: float | None = None) -> dict[str, Any]:
    return {"id": row.id, "camera": row.camera, "start": iso(row.start), "end": iso(row.end), "mode": row.mode,
            "reason": row.reason, "grant_id": row.grant_id, "requested_by": row.requested_by,
            "created_at": iso(row.created_at), "finished_at": iso(row.finished_at), "status": row.status,
            "progress": round(row.progress if progress is None else progress, 3), "export_hash": row.export_hash,
            "error": row.error, "review": row.review, "reviewed_by": row.reviewed_by,
            "reviewed_at": iso(row.reviewed_at), "detail": row.detail}


class Exports:
    def __init__(self, gw: Gateway, root: Path, recordings: Recordings, key: Ed25519PrivateKey,
                 redact_every: int) -> None:
        self.gw, self.dir, self.recordings, self.key = gw, root / "exports", recordings, key
        self.redact_every = redact_every
        self.progress: dict[str, float] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Jobs a stop interrupted are failed honestly, not left "running" for ever."""
        from sqlalchemy import update

        async with self.gw.db.session() as s:
            await s.execute(update(ExportRow).where(ExportRow.status.in_(("queued", "running")))
                            .values(status="failed", error="interrupted by a gateway stop"))

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def request(self, subject: Subject, channel_id: str, start: datetime, end: datetime, reason: str,
                      grant_id: str | None = None, mode: str = "original", source: str | None = None) -> ExportRow:
        """Queue an export of [start, end] under the gate's EXPORT decision for that window: from the
        gateway's recording, or (``source="device"``, or when the gateway holds nothing there) a
        download from the camera's device."""
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}")
        if source not in (None, *SOURCES):
            raise ValueError(f"source: expected one of {', '.join(SOURCES)}")
        if not reason.strip():
            raise ValueError("reason: an export needs a reason (who asked and why is part of the evidence)")
        if end <= start:
            raise ValueError("end: must be after start")
        detail = {"mode": mode, "reason": reason, "grant_asked": grant_id}
        decision = await self.gw.policy.authorize(subject_access(
            subject, Action.EXPORT, self.gw.camera_resource(channel_id), "export", window=(utc(start), utc(end)),
            detail={k: v for k, v in detail.items() if v}))
        if not decision:
            raise Denied(decision.reason)
        rows = [] if source == "device" else await self.recordings.segments(channel_id, start, end)
        download = None
        if not rows:
            missing = f"nothing is recorded for {channel_id} between {iso(start)} and {iso(end)}"
            if source == "gateway":
                raise LookupError(missing)
            try:
                download = device_export.open_download(self.gw, decision, channel_id, start, end)
            except LookupError as exc:
                raise LookupError(f"{missing}, and {exc}") from None
        row = ExportRow(id=uuid.uuid4().hex, camera=channel_id, start=start, end=end, mode=mode, reason=reason.strip(),
                        grant_id=decision.grant_id, requested_by=subject.id, created_at=now(),
                        status="queued", progress=0.0, review="needs_review" if mode == "public" else "n/a",
                        detail={"source": "device"} if download is not None else {"segments": len(rows)})
        async with self.gw.db.session() as s:
            s.add(row)
        await self.gw.audit.record(actor=subject.id, action="recording.export", resource=f"camera:{channel_id}",
                                   decision="allow", reason=row.reason, address=subject.address, request_id=row.id,
                                   extra={"mode": mode, "grant_id": row.grant_id, "start": iso(start), "end": iso(end),
                                          "source": "device" if download is not None else "gateway"})
        job = self._run(row, rows) if download is None else self._run_device(row, download)
        self.tasks[row.id] = asyncio.get_running_loop().create_task(job, name=f"export:{row.id}")
        return row

    async def get(self, export_id: str) -> tuple[ExportRow, float]:
        async with self.gw.db.session() as s:
            row = await s.get(ExportRow, export_id)
        if row is None:
            raise LookupError(f"no export {export_id!r}")
        return row, self.progress.get(export_id, row.progress)

    async def review(self, subject: Subject, export_id: str, approve: bool, note: str = "") -> ExportRow:
        """A reviewer (not the requester) approves or rejects a public-release copy (R14)."""
        row, _ = await self.get(export_id)
        await authorize_manage(self.gw, subject, row.camera, "recording.export.review")
        if row.mode != "public" or row.status != "done":
            raise ValueError("only a finished public-release export is reviewed")
        if subject.id == row.requested_by:
            raise Denied("the requester cannot review their own public-release export")
        async with self.gw.db.session() as s:
            row = await s.get(ExportRow, export_id)
            row.review = "approved" if approve else "rejected"
            row.reviewed_by, row.reviewed_at = subject.id, now()
            row.detail = {**row.detail, "review_note": note}
        await self.gw.audit.record(actor=subject.id, action="recording.export.review", resource=f"camera:{row.camera}",
                                   decision=row.review, reason=note, address=subject.address, request_id=export_id)
        return row

    def path_of(self, row: ExportRow) -> Path:
        return self.dir / (row.file or f"{row.id}.mp4")

    def _out(self, row: ExportRow) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / f"{safe_name(row.camera)}-{row.start:%Y%m%dT%H%M%SZ}-{row.id[:8]}.mp4"

    async def _run(self, row: ExportRow, segments: list[SegmentRow]) -> None:
        loop = asyncio.get_running_loop()

        def progress(value: float) -> None:
            loop.call_soon_threadsafe(self.progress.__setitem__, row.id, value)

        async def job() -> Written:
            out = self._out(row)
            redactor = Redactor(self.redact_every) if row.mode == "public" else None
            frames = await asyncio.to_thread(build, self.recordings.root, segments, utc(row.start).timestamp(),
                                             utc(row.end).timestamp(), out, progress, redactor)
            listed = [{"start": iso(s.start), "end": iso(s.end), "sha256": s.hash, "prev_sha256": s.prev_hash,
                       "status": s.status} for s in segments]
            return out, {"segments": listed, "frames": frames}, {"segments": len(segments), "frames": frames}

        await self._job(row, job)

    async def _run_device(self, row: ExportRow, download: device_export.Download) -> None:
        async def job() -> Written:
            out = self._out(row)
            redactor = Redactor(self.redact_every) if row.mode == "public" else None
            source = await device_export.write(download, row.start, row.end, out,
                                               lambda value: self.progress.__setitem__(row.id, value), redactor)
            return out, {"segments": [], "source": source, "frames": source["frames"]}, \
                {"source": "device", "frames": source["frames"], "media_seconds": source["media_seconds"]}

        await self._job(row, job)

    async def _job(self, row: ExportRow, job: Callable[[], Awaitable[Written]]) -> None:
        """Run the job that writes the MP4, then hash it and sign the manifest; the row follows."""
        self.progress[row.id] = 0.0
        await self._update(row.id, status="running")
        try:
            out, listed, detail = await job()
            digest, size = await asyncio.to_thread(hash_file, out)
            body = {
                "export_id": row.id, "camera": row.camera, "start": iso(row.start), "end": iso(row.end),
                "mode": "public-release" if row.mode == "public" else "original",
                "requested_by": row.requested_by, "reason": row.reason, "grant_id": row.grant_id,
                "created_at": iso(now()), "gateway": self.gw.node,
                "segments": listed["segments"], **({"source": listed["source"]} if "source" in listed else {}),
                "export": {"file": out.name, "sha256": digest, "size": size, "frames": listed["frames"]},
                "review_required": row.mode == "public",
            }
            await asyncio.to_thread(write_manifest, out, body, self.key)
            await self._update(row.id, status="done", progress=1.0, file=out.name, export_hash=digest,
                               finished_at=now(), detail={**detail, "size": size})
            self.gw.metrics.inc("vsgw_recording_exports_total", mode=row.mode)
        except asyncio.CancelledError:
            await asyncio.shield(self._update(row.id, status="failed", error="interrupted by a gateway stop"))
            raise
        except Exception as exc:
            log.warning("export %s failed: %s", row.id, exc)
            self.gw.metrics.inc("vsgw_recording_rejected_total", reason="export_failed")
            await self._update(row.id, status="failed", error=str(exc), finished_at=now())
        finally:
            self.progress.pop(row.id, None)
            self.tasks.pop(row.id, None)

    async def _update(self, export_id: str, **values: Any) -> None:
        async with self.gw.db.session() as s:
            row = await s.get(ExportRow, export_id)
            for key, value in values.items():
                setattr(row, key, value)


def build(root: Path, segments: list[SegmentRow], start: float, end: float, out: Path, progress: Progress,
          redactor: Redactor | None) -> int:
    """Write the MP4 (blocking). Sources are re-hashed first: an altered segment fails the export."""
    for row in segments:
        if row.status != "open" and row.hash and hash_file(root / row.path)[0] != row.hash:
            raise IntegrityError(f"segment {row.path} no longer matches its recorded SHA-256 (R10)")
    span = max(end - start, 1e-3)
    writer: Mp4 | None = None
    frames = 0
    try:
        for wall, unit in iter_range(root, segments, start, end):
            if writer is None:
                writer = Mp4(out, unit, wall, redactor)
            writer.add(wall, unit)
            frames += 1
            if frames % 25 == 0:
                progress(min(0.99, max(0.0, (wall - start) / span)))
        if writer is None:
            raise LookupError("no decodable picture in the range")
    finally:
        if writer is not None:
            writer.close()
    return frames


class Mp4:
    """MP4 output: codec copy, or (public release) decode → redact → H.264 encode."""

    def __init__(self, path: Path, first: AccessUnit, wall0: float, redactor: Redactor | None) -> None:
        self.wall0 = wall0
        self.redactor = redactor
        self.last = -1
        self.container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        width, height = picture_size(first)
        if redactor is not None:
            self.decoder = av.CodecContext.create(AV_CODEC[first.codec], "r")
            stream = self.container.add_stream("libx264", rate=25)
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "23"}
            stream.codec_context.thread_count = 2
        else:
            self.decoder = None
            stream = self.container.add_stream(AV_CODEC[first.codec])
            stream.codec_context.extradata = b"".join(b"\x00\x00\x00\x01" + p for p in first.params)
        stream.width, stream.height = width, height
        stream.time_base = TIME_BASE
        self.stream = stream

    def add(self, wall: float, unit: AccessUnit) -> None:
        ts = max(round((wall - self.wall0) * CLOCK_RATE), self.last + 1)
        self.last = ts
        if self.decoder is None:
            packet = av.Packet(unit.data)
            packet.dts, packet.pts, packet.time_base = ts, ts + (unit.pts - unit.dts), TIME_BASE
            packet.is_keyframe = unit.keyframe
            packet.stream = self.stream
            self.container.mux(packet)
            return
        packet = av.Packet(unit.data)
        packet.pts = packet.dts = ts
        packet.time_base = Fraction(1, CLOCK_RATE)
        for frame in self.decoder.decode(packet):
            self._encode(frame)

    def _encode(self, frame: av.VideoFrame) -> None:
        rgb = self.redactor.process(frame.to_ndarray(format="rgb24"))  # type: ignore[union-attr]
        out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        out.pts, out.time_base = frame.pts, TIME_BASE
        self.container.mux(self.stream.encode(out))

    def close(self) -> None:
        if self.decoder is not None:
            for frame in self.decoder.decode(None):
                self._encode(frame)
            self.container.mux(self.stream.encode(None))
        self.container.close()
