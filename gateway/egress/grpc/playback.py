"""Where a gRPC ``PullPlayback`` is served from, and ``ControlPlayback`` (R1): the gateway's own
recording first, else the device's playback, which the caller who opened it may pause, resume,
seek and speed up (MANSRTSP, checked by :mod:`gateway.egress.playback_control`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc

from adapters.base import Channel, NotSupported
from gateway.egress.playback_control import ControlError, Controllable, open_device_playback, playbacks_of
from gateway.media import AccessUnit
from gateway.policy import Decision
from proto.vsgw.v1 import vsgw_pb2 as pb

if TYPE_CHECKING:
    from .services import StreamService

ACTIONS = {pb.ControlPlaybackRequest.PAUSE: "pause", pb.ControlPlaybackRequest.RESUME: "resume",
           pb.ControlPlaybackRequest.SEEK: "seek", pb.ControlPlaybackRequest.SPEED: "speed"}
STATUS = {403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
          409: grpc.StatusCode.FAILED_PRECONDITION, 502: grpc.StatusCode.UNAVAILABLE,
          504: grpc.StatusCode.DEADLINE_EXCEEDED}


async def playback_source(service: StreamService, context: grpc.aio.ServicerContext, decision: Decision,
                          channel: Channel, start: datetime, end: datetime,
                          speed: float) -> tuple[AsyncIterator[AccessUnit], Controllable | None]:
    """(units, the device playback when they come from the device)."""
    gw, missing = service.gw, ""
    if gw.recordings is not None:
        try:
            return await gw.recordings.open_playback(decision, channel.id, start, end, speed), None
        except LookupError:
            missing = f"this gateway holds no recording of {channel.id!r} in that range"
        except ValueError as exc:
            await service._invalid(context, str(exc))
    try:
        device = open_device_playback(gw, decision, channel.id, start, end, speed)
        return device, device
    except ControlError as exc:
        await service._invalid(context, exc.message)
    except ConnectionError as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"camera {channel.id!r}: {exc}")
    except NotSupported as exc:
        if missing:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{missing}, and the device cannot play back: {exc}")
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                            f"camera {channel.id!r}: this gateway records nothing and the device cannot play back: "
                            f"{exc}")
    raise AssertionError("unreachable")


async def control_playback(service: StreamService, request: pb.ControlPlaybackRequest,
                           context: grpc.aio.ServicerContext) -> pb.ControlPlaybackReply:
    caller = await service._caller(context)
    action = ACTIONS.get(request.action)
    if not request.session:
        await service._invalid(context, "session: required (StreamInfo.playback_session)")
    if action is None:
        await service._invalid(context, "action: expected PAUSE, RESUME, SEEK or SPEED")
    which = request.WhichOneof("position")
    position = request.offset if which == "offset" else \
        request.time.ToDatetime(tzinfo=UTC).isoformat() if which == "time" else None
    try:
        state = await playbacks_of(service.gw).control(caller.subject, request.session, action, position,
                                                       request.speed or None, on_behalf_of=caller.on_behalf_of)
    except ControlError as exc:
        if exc.status == 400:
            await service._invalid(context, exc.message)
        await context.abort(STATUS.get(exc.status, grpc.StatusCode.UNAVAILABLE), exc.message)
    return pb.ControlPlaybackReply(session=state["session"], paused=state["paused"], speed=state["speed"],
                                   offset=state["offset"])
