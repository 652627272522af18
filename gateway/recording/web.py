"""HTTP routes of the recording part: timeline, playback stream, delete requests (refused inside
retention), evidence locks, export jobs and their files, review, and the source-retention audit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import select

from adapters.base import NotSupported
from gateway.egress.playback_control import ControlError, Controllable, open_device_playback, playbacks_of, playout
from gateway.egress.playback_control import add_routes as add_control_routes
from gateway.http import HttpError, json_object, json_response
from gateway.http.server import gateway_of, subject_of
from gateway.media.watermark import watermarked
from gateway.policy import Action, Decision, http_access
from gateway.registry import UnknownChannel

from .export import export_json
from .index import LockRow, SegmentRow, iso, now, parse_time, utc
from .integrity import verify_chain
from .locks import Denied, LockConflict, authorize_manage, lock_json
from .manifest import SUFFIX, fingerprint, public_pem
from .playback import StreamMuxer
from .retention import RetentionRefused
from .source_audit import audit_source_retention

if TYPE_CHECKING:
    from gateway.app import Gateway

    from . import RecordingPart

PART = web.AppKey("recording", object)
TIME_Q = {"start": {"type": "string", "description": "ISO 8601 or Unix seconds"},
          "end": {"type": "string", "description": "ISO 8601 or Unix seconds"}}
RANGE_BODY = {"type": "object", "required": ["start", "end", "reason"],
              "properties": {"start": {"type": "string"}, "end": {"type": "string"}, "reason": {"type": "string"}}}


def _part(request: web.Request) -> RecordingPart:
    return request.app[PART]  # type: ignore[return-value]


def _reject(request: web.Request, status: int, code: str, message: str, field: str | None = None) -> HttpError:
    gateway_of(request).metrics.inc("vsgw_recording_rejected_total", reason=code)
    return HttpError(status, code, message, field=field)


def _time(request: web.Request, source: dict[str, Any], name: str, default: datetime | None = None) -> datetime:
    value = source.get(name)
    if value in (None, ""):
        if default is not None:
            return default
        raise _reject(request, 400, "bad_request", f"{name}: required", name)
    try:
        return parse_time(str(value))
    except (ValueError, OverflowError, OSError):
        raise _reject(request, 400, "bad_request", f"{name}: expected ISO 8601 or Unix seconds", name) from None


def _span(request: web.Request, source: dict[str, Any],
          default_hours: float | None = None) -> tuple[datetime, datetime]:
    end = _time(request, source, "end", now() if default_hours else None)
    start = _time(request, source, "start", end - timedelta(hours=default_hours) if default_hours else None)
    if end <= start:
        raise _reject(request, 400, "bad_request", "end: must be after start", "end")
    return start, end


async def _playback_allowed(request: web.Request, cid: str, start: datetime, end: datetime) -> Decision:
    """The gate's answer for exactly this camera and range: a grant covers only its own window (R11, R13)."""
    gw = gateway_of(request)
    decision = await gw.policy.authorize(http_access(request, Action.VIEW_PLAYBACK, gw.camera_resource(cid),
                                                     window=(start, end)))
    if not decision:
        raise _reject(request, 403, "forbidden", decision.reason)
    return decision


async def ranges(request: web.Request) -> web.Response:
    """The timeline: recorded ranges of a camera (default: the last 24 hours)."""
    cid = request.match_info["cid"]
    start, end = _span(request, dict(request.query), default_hours=24)
    decision = await _playback_allowed(request, cid, start, end)
    out = await gateway_of(request).recordings.ranges(cid, start, end)
    return json_response({"camera": cid, "start": iso(start), "end": iso(end),
                          "watermark": decision.obligations.get("watermark"),  # the page overlays it (R13)
                          "ranges": [{"start": iso(a), "end": iso(b)} for a, b in out]})


async def play(request: web.Request) -> web.StreamResponse:
    """Recorded video as a stream: fragmented MP4 (default; a <video> element plays it) or MPEG-TS.
    The gateway's own recording first; with none in the range, the device's (GB/T 28181 INVITE
    Playback), whose session id (``X-Vsgw-Session``) takes pause / resume / seek / speed."""
    gw = gateway_of(request)
    cid = request.match_info["cid"]
    start, end = _span(request, dict(request.query))
    fmt = request.query.get("format", "mp4")
    if fmt not in StreamMuxer.FORMATS:
        raise _reject(request, 400, "bad_request", "format: expected mp4 or ts", "format")
    try:
        speed = float(request.query.get("speed", "1"))
    except ValueError:
        raise _reject(request, 400, "bad_request", "speed: expected a number", "speed") from None
    decision = await _playback_allowed(request, cid, start, end)
    device: Controllable | None = None
    try:
        units = await gw.recordings.open_playback(decision, cid, start, end, speed)
    except ValueError as exc:
        raise _reject(request, 400, "bad_request", str(exc), str(exc).split(":")[0]) from None
    except LookupError as exc:
        units = device = _from_device(request, decision, cid, start, end, speed, str(exc))
    resp: web.StreamResponse | None = None
    muxer: StreamMuxer | None = None
    shown = playout(device, units) if device is not None else units
    if "watermark" in decision.flags:  # a relative's playback carries the grant's text in its pixels (R13)
        shown = watermarked(shown, str(decision.obligations.get("watermark")), metrics=gw.metrics)
    opened = (playbacks_of(gw).serve(decision, device) if device is not None
              else gw.sessions.opened(decision, "playback", lambda reason: None))
    async with aclosing(units), aclosing(shown), opened as session:
        headers = {"X-Vsgw-Session": session.id, "X-Vsgw-Source": "device"} if device is not None else {}
        try:
            async for unit in shown:
                if session.reason is not None:  # the grant ended: the stream stops here, the audit says why
                    break
                if muxer is None:
                    muxer = await asyncio.to_thread(StreamMuxer, fmt, unit)
                    resp = web.StreamResponse(headers={"Content-Type": muxer.content_type,
                                                       "Cache-Control": "no-store", **headers})
                    await resp.prepare(request)
                if data := muxer.add(unit):
                    await resp.write(data)  # type: ignore[union-attr]
                session.position = (device.start + timedelta(seconds=device.offset) if device is not None
                                    else datetime.fromtimestamp(unit.wallclock, UTC))
        except (OSError, TimeoutError) as exc:  # the device refused, stalled or went away
            if device is None:
                raise
            gw.metrics.inc("vsgw_recording_device_playback_failed_total")
            if resp is None:
                raise _reject(request, 502, "device_failed", str(exc)) from None
    if muxer is None or resp is None:
        raise _reject(request, 404, "not_recorded", f"no decodable picture of {cid} in that range")
    await resp.write(muxer.close())
    await resp.write_eof()
    return resp


def _from_device(request: web.Request, decision: Decision, cid: str, start: datetime, end: datetime,
                 speed: float, missing: str) -> Controllable:
    """The device's playback when this gateway holds nothing in the range."""
    try:
        return open_device_playback(gateway_of(request), decision, cid, start, end, speed)
    except ControlError as exc:
        raise _reject(request, exc.status, exc.code, exc.message, exc.field) from None
    except (NotSupported, UnknownChannel) as exc:
        raise _reject(request, 404, "not_recorded", f"{missing}, and the device cannot play back: {exc}") from None
    except ConnectionError as exc:
        raise _reject(request, 503, "device_offline", f"{missing}, and {exc}") from None


async def segments(request: web.Request) -> web.Response:
    """Index rows with their hash chain, for auditors (R10)."""
    gw = gateway_of(request)
    cid = request.match_info["cid"]
    start, end = _span(request, dict(request.query), default_hours=24)
    await _playback_allowed(request, cid, start, end)
    async with gw.db.session() as s:
        rows = list(await s.scalars(select(SegmentRow).where(SegmentRow.camera == cid, SegmentRow.start < end,
                                                             SegmentRow.end > start).order_by(SegmentRow.start)))
    return json_response({"camera": cid, "segments": [
        {"start": iso(r.start), "end": iso(r.end), "size": r.size, "frames": r.frames, "sha256": r.hash,
         "prev_sha256": r.prev_hash, "status": r.status, "note": r.note} for r in rows]})


async def verify(request: web.Request) -> web.Response:
    """Re-hash the kept files and walk the hash chain (R10); auditors and managers only."""
    gw = gateway_of(request)
    cid = request.match_info["cid"]
    start, end = _span(request, dict(request.query), default_hours=24)
    try:
        await authorize_manage(gw, subject_of(request), cid, "recording.verify")
    except Denied as exc:
        raise _reject(request, 403, "forbidden", str(exc)) from None
    return json_response(await verify_chain(gw, _part(request).root, cid, start, end))


async def delete(request: web.Request) -> web.Response:
    """A delete request: refused inside retention (whoever asks) and under an evidence lock."""
    cid = request.match_info["cid"]
    start, end = _span(request, dict(request.query))
    try:
        removed = await _part(request).retention.delete(subject_of(request), cid, start, end)
    except Denied as exc:
        raise _reject(request, 403, "forbidden", str(exc)) from None
    except RetentionRefused as exc:
        raise _reject(request, 409, "retention", str(exc)) from None
    return json_response({"camera": cid, "deleted_segments": removed})


async def create_lock(request: web.Request) -> web.Response:
    cid = request.match_info["cid"]
    body = await json_object(request)
    start, end = _span(request, body)
    try:
        row = await _part(request).locks.lock(subject_of(request), cid, start, end, str(body.get("reason", "")),
                                              body.get("case_id"))
    except Denied as exc:
        raise _reject(request, 403, "forbidden", str(exc)) from None
    except ValueError as exc:
        raise _reject(request, 400, "bad_request", str(exc), str(exc).split(":")[0]) from None
    return json_response(lock_json(row), status=201)


async def list_locks(request: web.Request) -> web.Response:
    rows = await _part(request).locks.list(request.query.get("camera") or None)
    return json_response({"locks": [lock_json(r) for r in rows]})


async def release_lock(request: web.Request) -> web.Response:
    """Request a release (202: the lock holds until a second person confirms)."""
    body = await json_object(request)
    locks, lock_id = _part(request).locks, request.match_info["id"]
    return await _lock_step(request, 202, locks.request_release(subject_of(request), lock_id, body.get("reason")))


async def confirm_release(request: web.Request) -> web.Response:
    """A second, different person confirms a requested release; the lock ends now."""
    locks, lock_id = _part(request).locks, request.match_info["id"]
    return await _lock_step(request, 200, locks.confirm_release(subject_of(request), lock_id))


async def _lock_step(request: web.Request, status: int, step: Awaitable[LockRow]) -> web.Response:
    try:
        row = await step
    except Denied as exc:
        raise _reject(request, 403, "forbidden", str(exc)) from None
    except LookupError as exc:
        raise _reject(request, 404, "not_found", str(exc)) from None
    except LockConflict as exc:
        raise _reject(request, 409, "conflict", str(exc)) from None
    except ValueError as exc:
        raise _reject(request, 400, "bad_request", str(exc), str(exc).split(":")[0]) from None
    return json_response(lock_json(row), status=status)


async def create_export(request: web.Request) -> web.Response:
    cid = request.match_info["cid"]
    body = await json_object(request)
    start, end = _span(request, body)
    try:
        row = await _part(request).exports.request(subject_of(request), cid, start, end, str(body.get("reason", "")),
                                                   body.get("grant_id"), str(body.get("mode", "original")),
                                                   body.get("source"))
    except Denied as exc:
        raise _reject(request, 403, "forbidden", str(exc)) from None
    except LookupError as exc:
        raise _reject(request, 404, "not_recorded", str(exc)) from None
    except ConnectionError as exc:  # the device that would have to send it is offline
        raise _reject(request, 503, "device_offline", str(exc)) from None
    except ValueError as exc:
        raise _reject(request, 400, "bad_request", str(exc), str(exc).split(":")[0]) from None
    return json_response(export_json(row), status=202)


async def _export(request: web.Request, action: Action | None = None):  # noqa: ANN202
    part = _part(request)
    try:
        row, progress = await part.exports.get(request.match_info["id"])
    except LookupError as exc:
        raise _reject(request, 404, "not_found", str(exc)) from None
    subject = subject_of(request)
    if subject.id != row.requested_by or action is not None:
        gw = gateway_of(request)
        decision = await gw.policy.authorize(http_access(
            request, Action.EXPORT, gw.camera_resource(row.camera), window=(utc(row.start), utc(row.end)),
            egress="export", detail={"export_id": row.id}))
        if not decision:
            raise _reject(request, 403, "forbidden", decision.reason)
    return part, row, progress


async def get_export(request: web.Request) -> web.Response:
    _, row, progress = await _export(request)
    return json_response(export_json(row, progress))


async def _download(request: web.Request, manifest: bool) -> web.StreamResponse:
    part, row, _ = await _export(request, Action.EXPORT)
    if row.status != "done" or not row.file:
        raise _reject(request, 409, "not_ready", f"export {row.id} is {row.status}")
    path = part.exports.path_of(row)
    if manifest:
        path = path.with_name(path.name + SUFFIX)
    return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'})


async def export_file(request: web.Request) -> web.StreamResponse:
    return await _download(request, manifest=False)


async def export_manifest(request: web.Request) -> web.StreamResponse:
    return await _download(request, manifest=True)


async def review_export(request: web.Request) -> web.Response:
    body = await json_object(request)
    if not isinstance(body.get("approve"), bool):
        raise _reject(request, 400, "bad_request", "approve: expected true or false", "approve")
    try:
        row = await _part(request).exports.review(subject_of(request), request.match_info["id"], body["approve"],
                                                  str(body.get("note", "")))
    except Denied as exc:
        raise _reject(request, 403, "forbidden", str(exc)) from None
    except LookupError as exc:
        raise _reject(request, 404, "not_found", str(exc)) from None
    except ValueError as exc:
        raise _reject(request, 409, "conflict", str(exc)) from None
    return json_response(export_json(row))


async def evidence_key(request: web.Request) -> web.Response:
    """The public key exports are signed with; pin it for ``vsgw evidence verify --key``."""
    key = _part(request).key
    return web.Response(body=public_pem(key), content_type="application/x-pem-file",
                        headers={"X-Key-Fingerprint": fingerprint(key.public_key())})


async def source_retention(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    return json_response(await audit_source_retention(gw, _part(request).cfg.source_audit_kinds))


async def status(request: web.Request) -> web.Response:
    """Storage state, and recording state only of the cameras the caller may list (R2)."""
    part, gw = _part(request), gateway_of(request)
    guard = part.guard
    shown = {cid for cid in set(part.recorder.live) | set(part.recorder.tasks)
             if (await gw.policy.authorize(http_access(request, Action.LIST, gw.camera_resource(cid), quiet=True)))}
    return json_response({"storage": {"state": guard.state, "free_bytes": guard.free_bytes,
                                      "used_bytes": guard.used_bytes, "min_free_bytes": part.cfg.min_free_bytes,
                                      "quota_bytes": part.cfg.quota_bytes},
                          "retention_days": part.cfg.retention_days,
                          "recording": {cid: {"segment_start": iso(a), "last_picture": iso(b)}
                                        for cid, (a, b) in part.recorder.live.items() if cid in shown},
                          "cameras": sorted(c for c in part.recorder.tasks if c in shown)})


def add_routes(gw: Gateway, part: RecordingPart) -> None:
    gw.app[PART] = part
    add_control_routes(gw)
    route, tag = gw.api.route, "recordings"
    obj = {"type": "object"}
    route("GET", "/api/recordings/status", status, summary="Recording and storage state", tag=tag, response=obj)
    route("GET", "/api/recordings/evidence-key", evidence_key, summary="Public key that signs export manifests",
          tag=tag, response={"type": "string"}, content_type="application/x-pem-file")
    route("GET", "/api/recordings/source-retention", source_retention, tag=tag, response=obj,
          summary="Compliance findings: GB/T 28181 devices not holding 30 days (QD 19(7), WX 28)")
    route("GET", "/api/recordings/locks", list_locks, summary="Evidence locks", tag=tag, response=obj,
          query={"camera": {"type": "string"}})
    route("POST", "/api/recordings/locks/{id}/release", release_lock, tag=tag, response=obj, status=202,
          summary="Request an evidence lock's release (reason required; a second person confirms)",
          body={"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}})
    route("POST", "/api/recordings/locks/{id}/release/confirm", confirm_release, tag=tag, response=obj,
          summary="Confirm a requested release (two-person rule: not the requester)")
    route("GET", "/api/recordings/{cid}/ranges", ranges, summary="Recorded ranges (timeline)", tag=tag,
          response=obj, query=TIME_Q)
    route("GET", "/api/recordings/{cid}/play", play, summary="Play a recorded range (fragmented MP4 or MPEG-TS)",
          tag=tag, response={"type": "string", "format": "binary"}, content_type="video/mp4",
          query={**TIME_Q, "speed": {"type": "number"}, "format": {"type": "string", "enum": ["mp4", "ts"]}})
    route("GET", "/api/recordings/{cid}/segments", segments, summary="Segments and their hash chain", tag=tag,
          response=obj, query=TIME_Q)
    route("GET", "/api/recordings/{cid}/verify", verify, summary="Check file hashes and the hash chain (R10)",
          tag=tag, response=obj, query=TIME_Q)
    route("DELETE", "/api/recordings/{cid}", delete, tag=tag, response=obj, query=TIME_Q,
          summary="Delete footage outside retention (refused inside the 30-day period and under locks)")
    route("POST", "/api/recordings/{cid}/locks", create_lock, summary="Lock a range as evidence", tag=tag,
          response=obj, status=201,
          body={**RANGE_BODY, "properties": {**RANGE_BODY["properties"], "case_id": {"type": "string"}}})
    route("POST", "/api/recordings/{cid}/export", create_export, tag=tag, response=obj, status=202,
          summary="Export a range as MP4 with a signed manifest (mode public: faces and plates blurred); "
                  "source device (or nothing recorded here): downloaded from the camera's device",
          body={**RANGE_BODY, "properties": {**RANGE_BODY["properties"], "grant_id": {"type": "string"},
                                             "mode": {"type": "string", "enum": ["original", "public"]},
                                             "source": {"type": "string", "enum": ["gateway", "device"]}}})
    route("GET", "/api/exports/{id}", get_export, summary="Export job and progress", tag=tag, response=obj)
    route("GET", "/api/exports/{id}/file", export_file, summary="Download the exported MP4", tag=tag,
          response={"type": "string", "format": "binary"}, content_type="video/mp4")
    route("GET", "/api/exports/{id}/manifest", export_manifest, summary="Download the signed manifest", tag=tag,
          response={"type": "object"})
    route("POST", "/api/exports/{id}/review", review_export, summary="Approve or reject a public-release export",
          tag=tag, response=obj,
          body={"type": "object", "required": ["approve"],
                "properties": {"approve": {"type": "boolean"}, "note": {"type": "string"}}})
