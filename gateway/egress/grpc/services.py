"""The three services of ``vsgw.v1``: cameras, streams, PTZ. Every call asks the policy gate."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import av
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from adapters.base import Channel, NotSupported, PtzCommand
from gateway.bus import ChannelAdded, ChannelRemoved, ChannelState
from gateway.egress.playback_control import playbacks_of
from gateway.media import AccessUnit, Reader, StreamClosed, stream_key
from gateway.policy import Action, Decision, Resource, grpc_access
from gateway.policy.sessions import VideoSession
from gateway.registry import UnknownChannel
from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc

from .auth import Caller, caller_of
from .playback import control_playback, playback_source
from .snapshot import picture_size, snapshot_jpeg

if TYPE_CHECKING:
    from gateway.app import Gateway

MAX_PAGE = 1000


def _ts(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def unit_message(unit: AccessUnit) -> pb.MediaMessage:
    return pb.MediaMessage(unit=pb.AccessUnit(pts=unit.pts, dts=unit.dts, keyframe=unit.keyframe, data=unit.data,
                                              capture_time=_ts(unit.wallclock), audio=unit.is_audio,
                                              codec=unit.codec))


class EncodedUnits:
    """The wire bytes of each stream's latest access unit, encoded once for all its live readers
    (a fan-out to N clients serializes each picture once, not N times)."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[AccessUnit, bytes]] = {}
        self._users: Counter[str] = Counter()

    def use(self, key: str) -> None:
        self._users[key] += 1

    def release(self, key: str) -> None:
        """The last live reader of ``key`` left: drop its picture."""
        self._users[key] -= 1
        if self._users[key] <= 0:
            del self._users[key]
            self._latest.pop(key, None)

    def encode(self, key: str, unit: AccessUnit) -> bytes:
        cached = self._latest.get(key)
        if cached is not None and cached[0] is unit:
            return cached[1]
        data = unit_message(unit).SerializeToString()
        self._latest[key] = (unit, data)
        return data


def pass_encoded(message: pb.MediaMessage | bytes) -> bytes:
    """Response serializer for media streams: bytes are already a serialized MediaMessage."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def info_message(unit: AccessUnit, size: tuple[int, int] = (0, 0), audio_codec: str | None = None) -> pb.MediaMessage:
    """StreamInfo from the first picture (``unit``), with the audio codec when one was seen."""
    return pb.MediaMessage(info=pb.StreamInfo(codec=unit.codec, parameter_sets=list(unit.params),
                                              width=size[0], height=size[1], audio_codec=audio_codec or ""))


class Base:
    def __init__(self, gw: Gateway, allow_tokens: bool) -> None:
        self.gw = gw
        self.allow_tokens = allow_tokens

    async def _invalid(self, context: grpc.aio.ServicerContext, message: str) -> None:
        self.gw.metrics.inc("vsgw_grpc_rejected_total", reason="invalid_argument")
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    async def _caller(self, context: grpc.aio.ServicerContext) -> Caller:
        return await caller_of(self.gw, context, self.allow_tokens)

    async def _listable(self, caller: Caller, camera_id: str) -> bool:
        """List filtering: one quiet decision per camera (the gate records them in aggregate)."""
        return (await self.gw.policy.authorize(grpc_access(
            caller.subject, Action.LIST, self.gw.camera_resource(camera_id), on_behalf_of=caller.on_behalf_of,
            quiet=True))).allowed

    async def _authorize(self, context: grpc.aio.ServicerContext, action: Action, camera_id: str,
                         caller: Caller | None = None,
                         window: tuple[datetime, datetime] | None = None) -> tuple[Decision, Channel]:
        """Authenticate, check the camera exists and the gate allows ``action`` on it (over
        ``window`` for recorded video); the decision is the capability the reader is opened with."""
        caller = caller or await self._caller(context)
        if not camera_id:
            await self._invalid(context, "camera_id: required")
        decision = await self.gw.policy.authorize(grpc_access(
            caller.subject, action, self.gw.camera_resource(camera_id), on_behalf_of=caller.on_behalf_of,
            window=window))
        channel = self.gw.registry.channels.get(camera_id)
        if channel is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no camera {camera_id!r}")
        if not decision:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, decision.reason)
        return decision, channel  # type: ignore[return-value]

    async def _ended(self, context: grpc.aio.ServicerContext, session: VideoSession) -> None:
        """A session the gateway closed ends the call with the reason (R11–R13)."""
        if session.reason is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, session.reason)


class CameraService(Base, rpc.CameraServiceServicer):
    def _camera(self, channel: Channel, resource: Resource) -> pb.Camera:
        return pb.Camera(id=channel.id, name=channel.name, adapter=channel.adapter, online=channel.online,
                         ptz=channel.ptz, codec=channel.codec or "", civil_code=channel.civil_code or "",
                         parent=channel.parent or "", unit=resource.unit or "", security_level=resource.security_level)

    async def ListCameras(self, request: pb.ListCamerasRequest, context: grpc.aio.ServicerContext) -> pb.ListCamerasResponse:
        caller = await self._caller(context)
        size = request.page_size or 100
        if not 1 <= size <= MAX_PAGE:
            await self._invalid(context, f"page_size: expected 1…{MAX_PAGE}, got {request.page_size}")
        after = ""
        if request.page_token:
            try:
                after = base64.b64decode(request.page_token.encode(), altchars=b"-_", validate=True).decode()
            except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
                await self._invalid(context, "page_token: not a token this service issued")
        text = request.text.lower()
        out: list[pb.Camera] = []
        more = False
        for cid in sorted(self.gw.registry.channels):
            if cid <= after:
                continue
            ch = self.gw.registry.channels[cid]
            if request.online == pb.ONLINE_ONLY and not ch.online or request.online == pb.OFFLINE_ONLY and ch.online:
                continue
            if text and text not in cid.lower() and text not in ch.name.lower():
                continue
            if request.civil_code and not (ch.civil_code or "").startswith(request.civil_code):
                continue
            resource = self.gw.camera_resource(cid)
            if request.unit and resource.unit != request.unit:
                continue
            if not await self._listable(caller, cid):
                continue
            if len(out) == size:
                more = True
                break
            out.append(self._camera(ch, resource))
        token = base64.urlsafe_b64encode(out[-1].id.encode()).decode() if more else ""
        return pb.ListCamerasResponse(cameras=out, next_page_token=token)

    async def GetCamera(self, request: pb.GetCameraRequest, context: grpc.aio.ServicerContext) -> pb.Camera:
        _, channel = await self._authorize(context, Action.LIST, request.camera_id)
        return self._camera(channel, self.gw.camera_resource(channel.id))

    async def WatchCameras(self, request: pb.WatchCamerasRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.CameraEvent]:
        caller = await self._caller(context)
        with self.gw.bus.subscribe("channel.") as sub:
            async for event in sub:
                if isinstance(event, ChannelAdded):
                    kind, cid, reason = pb.CameraEvent.ADDED, event.channel_id, ""
                elif isinstance(event, ChannelRemoved):
                    kind, cid, reason = pb.CameraEvent.REMOVED, event.channel_id, ""
                elif isinstance(event, ChannelState):
                    kind = pb.CameraEvent.ONLINE if event.online else pb.CameraEvent.OFFLINE
                    cid, reason = event.channel_id, event.reason or ""
                else:
                    continue
                if await self._listable(caller, cid):
                    yield pb.CameraEvent(kind=kind, camera_id=cid, reason=reason, time=_ts(event.time))


class StreamService(Base, rpc.StreamServiceServicer):
    def __init__(self, gw: Gateway, allow_tokens: bool) -> None:
        super().__init__(gw, allow_tokens)
        self.encoded = EncodedUnits()
        self._sizes: dict[tuple[str, tuple[bytes, ...]], tuple[int, int]] = {}

    async def _size(self, unit: AccessUnit) -> tuple[int, int]:
        """Picture size for StreamInfo: one keyframe decoded per parameter set, off the loop."""
        if not unit.keyframe:
            return 0, 0
        key = (unit.codec, unit.params)
        size = self._sizes.get(key)
        if size is None:
            try:
                size = await asyncio.to_thread(picture_size, unit)
            except (ValueError, av.error.FFmpegError):
                size = (0, 0)
            if len(self._sizes) >= 1024:  # parameter sets change rarely; keep the table small anyway
                self._sizes.clear()
            self._sizes[key] = size
        return size

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """The generated registration, except that media responses may be pre-encoded bytes."""
        handlers = {
            "PullLive": grpc.unary_stream_rpc_method_handler(
                self.PullLive, request_deserializer=pb.PullLiveRequest.FromString, response_serializer=pass_encoded),
            "PullPlayback": grpc.unary_stream_rpc_method_handler(
                self.PullPlayback, request_deserializer=pb.PullPlaybackRequest.FromString,
                response_serializer=pass_encoded),
            "ControlPlayback": grpc.unary_unary_rpc_method_handler(
                self.ControlPlayback, request_deserializer=pb.ControlPlaybackRequest.FromString,
                response_serializer=pb.ControlPlaybackReply.SerializeToString),
            "GetSnapshot": grpc.unary_unary_rpc_method_handler(
                self.GetSnapshot, request_deserializer=pb.GetSnapshotRequest.FromString,
                response_serializer=pb.Snapshot.SerializeToString),
        }
        name = pb.DESCRIPTOR.services_by_name["StreamService"].full_name
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        server.add_registered_method_handlers(name, handlers)

    async def PullLive(self, request: pb.PullLiveRequest, context: grpc.aio.ServicerContext) -> None:
        """One ``context.write`` at a time: a write completes only when the transport took the
        message within the client's HTTP/2 window, so a slow client stalls here, its bounded hub
        reader fills, and the reader skips to the next keyframe (R6/R17: memory stays bounded,
        other clients never wait)."""
        decision, channel = await self._authorize(context, Action.PULL_STREAM, request.camera_id)
        if request.substream < 0:
            await self._invalid(context, f"substream: expected ≥ 0, got {request.substream}")
        if not channel.online:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"camera {channel.id!r} is offline")
        key = stream_key(channel.id, request.substream)
        self.gw.metrics.inc("vsgw_grpc_pulls_total", stream=key)
        name = f"grpc:{decision.request.subject.id}"  # type: ignore[union-attr]
        with self.gw.hub.subscribe(decision, channel.id, substream=request.substream, name=name,
                                   limits=self.gw.reader_limits) as reader:
            async with self.gw.sessions.opened(decision, "live", lambda reason: reader.close()) as session:
                await self._relay(context, reader, key, session)

    async def _relay(self, context: grpc.aio.ServicerContext, reader: Reader, key: str,
                     session: VideoSession) -> None:
        """Write the reader's units until the client leaves or the gateway ends the session."""
        metrics, encode = self.gw.metrics, self.encoded.encode
        counted = 0

        def count_skips() -> None:  # as they happen, and once more when the call ends
            nonlocal counted
            if reader.skips != counted:
                metrics.inc("vsgw_grpc_reader_skips_total", reader.skips - counted, stream=key)
                counted = reader.skips

        self.encoded.use(key)
        try:
            unit = await reader.get()
            while unit.is_audio:  # StreamInfo describes the pictures; sound before the first one is not sent
                unit = await reader.get()
            stream = self.gw.hub.streams.get(key)
            await context.write(info_message(unit, await self._size(unit), stream.audio_codec if stream else None))
            while True:
                await context.write(encode(key, unit))
                count_skips()
                unit = await reader.get()
        except StreamClosed:
            await self._ended(context, session)
        finally:
            count_skips()
            self.encoded.release(key)

    async def PullPlayback(self, request: pb.PullPlaybackRequest, context: grpc.aio.ServicerContext) -> None:
        caller = await self._caller(context)
        if not request.HasField("start") or not request.HasField("end"):
            await self._invalid(context, "start, end: both required")
        try:
            start, end = request.start.ToDatetime(tzinfo=UTC), request.end.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            await self._invalid(context, "start, end: outside the years 1…9999")
        speed = request.speed or 1.0
        if end <= start:
            await self._invalid(context, "end: must be after start")
        if not 0.25 <= speed <= 16:
            await self._invalid(context, f"speed: expected 0.25…16, got {speed:g}")
        decision, channel = await self._authorize(context, Action.VIEW_PLAYBACK, request.camera_id, caller,
                                                  (start, end))
        units, device = await playback_source(self, context, decision, channel, start, end, speed)
        first = True
        opened = (playbacks_of(self.gw).serve(decision, device) if device is not None
                  else self.gw.sessions.opened(decision, "playback", lambda reason: None))
        try:
            async with opened as session:
                async for unit in units:
                    if session.reason is not None:
                        break
                    if first and unit.is_audio:  # the stream starts with its first picture
                        continue
                    if first:
                        info = info_message(unit, await self._size(unit))
                        info.info.playback_session = session.id if device is not None else ""
                        await context.write(info)
                        first = False
                    await context.write(unit_message(unit))
                    session.position = (device.start + timedelta(seconds=device.offset) if device is not None
                                        else datetime.fromtimestamp(unit.wallclock, UTC))
            await self._ended(context, session)
        except NotSupported as exc:  # a device that finds out only once asked
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"camera {channel.id!r} cannot play back: {exc}")
        except (OSError, TimeoutError) as exc:  # the device refused, stalled or went away
            if device is None:
                raise
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"camera {channel.id!r}: {exc}")
        finally:
            close = getattr(units, "aclose", None)
            if close is not None:
                await close()

    async def ControlPlayback(self, request: pb.ControlPlaybackRequest,
                              context: grpc.aio.ServicerContext) -> pb.ControlPlaybackReply:
        return await control_playback(self, request, context)

    async def GetSnapshot(self, request: pb.GetSnapshotRequest, context: grpc.aio.ServicerContext) -> pb.Snapshot:
        decision, channel = await self._authorize(context, Action.PULL_STREAM, request.camera_id)
        if not channel.online:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"camera {channel.id!r} is offline")
        stream = self.gw.hub.stream(channel.id)
        keyframe = stream.gop[0] if stream.gop else None
        if keyframe is None:
            with self.gw.hub.subscribe(decision, channel.id, name="snapshot") as reader:
                try:
                    keyframe = await asyncio.wait_for(_picture(reader), 10)
                except TimeoutError:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"camera {channel.id!r} sent no picture in 10 s")
        try:
            jpeg, width, height = await asyncio.to_thread(snapshot_jpeg, keyframe)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the latest keyframe could not be decoded: {exc}")
        return pb.Snapshot(jpeg=jpeg, width=width, height=height, capture_time=_ts(keyframe.wallclock))


async def _picture(reader: Reader) -> AccessUnit:
    """The reader's next picture (a camera's audio passed over)."""
    while (unit := await reader.get()).is_audio:
        pass
    return unit


class PtzService(Base, rpc.PtzServiceServicer):
    async def _send(self, context: grpc.aio.ServicerContext, camera_id: str, command: PtzCommand) -> pb.PtzReply:
        _, channel = await self._authorize(context, Action.PTZ, camera_id)
        try:
            await self.gw.registry.adapter_for(channel.id).ptz(channel.id, command)
        except NotSupported as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except UnknownChannel:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no camera {camera_id!r}")
        return pb.PtzReply()

    async def Move(self, request: pb.MoveRequest, context: grpc.aio.ServicerContext) -> pb.PtzReply:
        for name in ("pan", "tilt", "zoom"):
            if not -1.0 <= getattr(request, name) <= 1.0:
                await self._invalid(context, f"{name}: expected -1.0…1.0, got {getattr(request, name):g}")
        return await self._send(context, request.camera_id, PtzCommand(pan=request.pan, tilt=request.tilt, zoom=request.zoom))

    async def Stop(self, request: pb.StopRequest, context: grpc.aio.ServicerContext) -> pb.PtzReply:
        return await self._send(context, request.camera_id, PtzCommand())

    async def _preset(self, request: pb.PresetRequest, context: grpc.aio.ServicerContext, action: str) -> pb.PtzReply:
        if not 1 <= request.preset <= 255:
            await self._invalid(context, f"preset: expected 1…255, got {request.preset}")
        return await self._send(context, request.camera_id, PtzCommand(preset=request.preset, preset_action=action))

    async def GotoPreset(self, request: pb.PresetRequest, context: grpc.aio.ServicerContext) -> pb.PtzReply:
        return await self._preset(request, context, "goto")

    async def SetPreset(self, request: pb.PresetRequest, context: grpc.aio.ServicerContext) -> pb.PtzReply:
        return await self._preset(request, context, "set")
