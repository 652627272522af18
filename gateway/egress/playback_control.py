"""Device playbacks addressable by their session (R1, R11): pause, resume, seek and speed.

A playback served from the device (GB/T 28181 INVITE Playback) runs under a video session of
``gw.sessions``; its id reaches the client (HTTP ``X-Vsgw-Session``, gRPC
``StreamInfo.playback_session``) and ``POST /api/playback/{session}/control`` or gRPC
``ControlPlayback`` steer it with MANSRTSP. Only the subject that opened it may, a seek stays inside
the window the gate allowed and inside the range the device was asked for, and the speed inside
the viewing bound (``gw.recordings.max_speed``, else 16). Each control is audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aiohttp import web

from adapters.base import NotSupported
from gateway.http import HttpError, json_object, json_response
from gateway.http.server import gateway_of, subject_of
from gateway.media import CLOCK_RATE, AccessUnit
from gateway.policy import Decision, Subject
from gateway.policy.sessions import VideoSession

if TYPE_CHECKING:
    from gateway.app import Gateway

ACTIONS = ("pause", "resume", "seek", "speed")
FRAME, JUMP = CLOCK_RATE // 25, 5 * CLOCK_RATE  # one frame's step across a jump; a larger step is a jump
MIN_SPEED, DEVICE_MAX_SPEED = 0.25, 16.0


@runtime_checkable
class Controllable(Protocol):
    """A playback the device runs for us (``adapters.gb28181.playback.DevicePlayback``)."""

    start: datetime
    end: datetime
    speed: float
    paused: bool
    offset: float

    async def control(self, *, pause: bool = False, resume: bool = False, seek: float | None = None,
                      speed: float | None = None) -> None: ...

    def stop(self, reason: str) -> None: ...


class ControlError(Exception):
    """A refused control, with the HTTP status it maps to (gRPC maps the same statuses)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def open_device_playback(gw: Gateway, decision: Decision, channel_id: str, start: datetime, end: datetime,
                         speed: float) -> Controllable:
    """The device's playback of [start, end] under ``decision`` (raises NotSupported when the
    camera's source keeps no recordings, ControlError for a speed the device cannot take)."""
    if not MIN_SPEED <= speed <= max_speed(gw):
        raise ControlError(400, "bad_request", f"speed: expected {MIN_SPEED:g}…{max_speed(gw):g}, got {speed:g}",
                           "speed")
    units = gw.registry.adapter_for(channel_id).open_playback(decision, channel_id, start, end, speed)
    if not isinstance(units, Controllable):
        raise NotSupported(f"the playback of {channel_id} cannot be controlled")
    return units


async def playout(playback: Controllable, units: AsyncIterator[AccessUnit]) -> AsyncIterator[AccessUnit]:
    """The device's units re-timed for a player (a browser's <video>): time advances by the media
    time between units over the current speed, and by one frame across a seek or a jump in the
    device's timestamps, so a pause, a seek or a speed change never leaves the player at a gap."""
    base_in = base_out = last_in = last_out = -1
    speed = playback.speed
    async for unit in units:
        jumped = last_in >= 0 and not 0 <= unit.dts - last_in <= JUMP
        if base_in < 0 or jumped or playback.speed != speed:
            base_in, speed = unit.dts, playback.speed
            base_out = last_out + FRAME if last_out >= 0 else 0
        out = max(base_out + round((unit.dts - base_in) / speed), last_out + 1 if unit.dts != last_in else last_out)
        last_in, last_out = unit.dts, out
        yield replace(unit, dts=out, pts=out + (unit.pts - unit.dts))


def max_speed(gw: Gateway) -> float:
    recordings = gw.recordings
    return min(DEVICE_MAX_SPEED, float(recordings.max_speed)) if recordings is not None else DEVICE_MAX_SPEED


def state_json(session: VideoSession, playback: Controllable) -> dict[str, Any]:
    return {"session": session.id, "camera": session.decision.camera, "start": _iso(playback.start),
            "end": _iso(playback.end), "offset": round(playback.offset, 3), "speed": playback.speed,
            "paused": playback.paused}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DevicePlaybacks:
    """The device playbacks being served, by the id of the video session they run under."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.running: dict[str, tuple[VideoSession, Controllable]] = {}

    @asynccontextmanager
    async def serve(self, decision: Decision, playback: Controllable) -> AsyncIterator[VideoSession]:
        """A video session for the body's duration; the gateway closing it stops the device."""
        async with self.gw.sessions.opened(decision, "playback", playback.stop) as session:
            self.running[session.id] = (session, playback)
            try:
                yield session
            finally:
                self.running.pop(session.id, None)

    def of(self, subject: Subject, on_behalf_of: Subject | None = None) -> list[tuple[VideoSession, Controllable]]:
        """The caller's own running device playbacks."""
        return [(s, p) for s, p in self.running.values() if _owner(s) == _ids(subject, on_behalf_of)]

    async def control(self, subject: Subject, session_id: str, action: Any, position: Any = None, speed: Any = None,
                      on_behalf_of: Subject | None = None) -> dict[str, Any]:
        """Check and send one control; returns the playback's state after it."""
        try:
            session, playback = self._owned(subject, on_behalf_of, session_id)
            seek, new_speed = self._checked(session, playback, action, position, speed)
            try:
                await playback.control(pause=action == "pause", resume=action == "resume", seek=seek, speed=new_speed)
            except LookupError as exc:
                raise ControlError(409, "not_running", str(exc)) from None
            except ValueError as exc:
                raise ControlError(400, "bad_request", str(exc), "action") from None
            except TimeoutError:
                raise ControlError(504, "device_timeout", "the device did not answer the MANSRTSP request") from None
            except ConnectionError as exc:  # the device refused it, or its dialog broke
                raise ControlError(502, "device_refused", str(exc)) from None
        except ControlError as exc:
            self.gw.metrics.inc("vsgw_playback_control_total", result=exc.code)
            raise
        self.gw.metrics.inc("vsgw_playback_control_total", result="ok")
        await self.gw.audit.record(actor=subject.id, action="playback.control",
                                   resource=f"camera:{session.decision.camera}", decision="allow",
                                   reason=str(action), address=subject.address,
                                   extra={k: v for k, v in {"session": session.id, "seek": seek,
                                                            "speed": new_speed}.items() if v is not None})
        return state_json(session, playback)

    def _owned(self, subject: Subject, on_behalf_of: Subject | None,
               session_id: str) -> tuple[VideoSession, Controllable]:
        entry = self.running.get(session_id)
        if entry is None:
            raise ControlError(404, "not_found", f"no device playback {session_id!r} is running")
        session = entry[0]
        if _owner(session) != _ids(subject, on_behalf_of):
            raise ControlError(403, "forbidden", "only the subject that opened this playback may control it")
        if session.reason is not None:
            raise ControlError(409, "not_running", f"the playback ended: {session.reason}")
        return entry

    def _checked(self, session: VideoSession, playback: Controllable, action: Any, position: Any,
                 speed: Any) -> tuple[float | None, float | None]:
        """(seek seconds from the playback's start, speed) for a valid request."""
        if action not in ACTIONS:
            raise ControlError(400, "bad_request", f"action: expected one of {', '.join(ACTIONS)}", "action")
        if position is not None and action != "seek":
            raise ControlError(400, "bad_request", f"position: only with seek, not {action}", "position")
        if speed is not None and action == "pause":
            raise ControlError(400, "bad_request", "speed: not with pause", "speed")
        if action == "seek" and position is None:
            raise ControlError(400, "bad_request", "position: required for seek", "position")
        if action == "speed" and speed is None:
            raise ControlError(400, "bad_request", "speed: required for a speed change", "speed")
        new_speed = None
        if speed is not None:
            bound = max_speed(self.gw)
            if isinstance(speed, bool) or not isinstance(speed, int | float) or not MIN_SPEED <= speed <= bound:
                raise ControlError(400, "bad_request", f"speed: expected {MIN_SPEED:g}…{bound:g}", "speed")
            new_speed = float(speed)
        seek = self._seek(session, playback, position) if action == "seek" else None
        return seek, new_speed

    @staticmethod
    def _seek(session: VideoSession, playback: Controllable, position: Any) -> float:
        if isinstance(position, bool) or not isinstance(position, int | float | str):
            raise ControlError(400, "bad_request", "position: expected seconds from the start or an ISO time",
                               "position")
        try:
            if isinstance(position, str):
                when = datetime.fromisoformat(position.strip())
                when = when if when.tzinfo else when.replace(tzinfo=UTC)
            else:
                when = playback.start + timedelta(seconds=float(position))
        except (ValueError, OverflowError):
            raise ControlError(400, "bad_request", "position: expected seconds from the start or an ISO time",
                               "position") from None
        window = session.decision.window
        if window is None or not window.start <= when <= window.end:
            raise ControlError(403, "forbidden", "position: outside the time window the gate allowed", "position")
        if not playback.start <= when < playback.end:
            raise ControlError(400, "bad_request", "position: outside the range this playback plays", "position")
        return (when - playback.start).total_seconds()


def _ids(subject: Subject, on_behalf_of: Subject | None) -> tuple[str, str | None]:
    return subject.id, on_behalf_of.id if on_behalf_of is not None else None


def _owner(session: VideoSession) -> tuple[str, str | None]:
    request = session.decision.request
    assert request is not None
    return _ids(request.subject, request.on_behalf_of)


PLAYBACKS = web.AppKey("device_playbacks", DevicePlaybacks)


def playbacks_of(gw: Gateway) -> DevicePlaybacks:
    return gw.app[PLAYBACKS]


async def control(request: web.Request) -> web.Response:
    body = await json_object(request)
    try:
        state = await playbacks_of(gateway_of(request)).control(
            subject_of(request), request.match_info["session"], body.get("action"), body.get("position"),
            body.get("speed"))
    except ControlError as exc:
        raise HttpError(exc.status, exc.code, exc.message, field=exc.field) from None
    return json_response(state)


async def mine(request: web.Request) -> web.Response:
    """The caller's running device playbacks (a browser's <video> cannot read response headers)."""
    camera = request.query.get("camera")
    found = playbacks_of(gateway_of(request)).of(subject_of(request))
    return json_response({"playbacks": [state_json(s, p) for s, p in found
                                        if camera is None or s.decision.camera == camera]})


def add_routes(gw: Gateway) -> None:
    gw.app[PLAYBACKS] = DevicePlaybacks(gw)
    tag, obj = "recordings", {"type": "object"}
    gw.api.route("GET", "/api/playback", mine, tag=tag, response=obj, query={"camera": {"type": "string"}},
                 summary="The caller's running device playbacks with their session ids")
    gw.api.route("POST", "/api/playback/{session}/control", control, tag=tag, response=obj,
                 summary="Pause, resume, seek or change the speed of a device playback (MANSRTSP)",
                 body={"type": "object", "required": ["action"], "properties": {
                     "action": {"type": "string", "enum": list(ACTIONS)},
                     "position": {"description": "seek: seconds from the playback's start, or an ISO 8601 time",
                                  "oneOf": [{"type": "number"}, {"type": "string"}]},
                     "speed": {"type": "number", "minimum": MIN_SPEED, "maximum": DEVICE_MAX_SPEED}}})
