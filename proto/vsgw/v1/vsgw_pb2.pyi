import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OnlineFilter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ONLINE_ANY: _ClassVar[OnlineFilter]
    ONLINE_ONLY: _ClassVar[OnlineFilter]
    OFFLINE_ONLY: _ClassVar[OnlineFilter]
ONLINE_ANY: OnlineFilter
ONLINE_ONLY: OnlineFilter
OFFLINE_ONLY: OnlineFilter

class Camera(_message.Message):
    __slots__ = ("id", "name", "adapter", "online", "ptz", "codec", "civil_code", "parent", "unit", "security_level")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    PTZ_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    CIVIL_CODE_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SECURITY_LEVEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    adapter: str
    online: bool
    ptz: bool
    codec: str
    civil_code: str
    parent: str
    unit: str
    security_level: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., adapter: _Optional[str] = ..., online: _Optional[bool] = ..., ptz: _Optional[bool] = ..., codec: _Optional[str] = ..., civil_code: _Optional[str] = ..., parent: _Optional[str] = ..., unit: _Optional[str] = ..., security_level: _Optional[int] = ...) -> None: ...

class ListCamerasRequest(_message.Message):
    __slots__ = ("unit", "civil_code", "online", "text", "page_size", "page_token")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CIVIL_CODE_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    unit: str
    civil_code: str
    online: OnlineFilter
    text: str
    page_size: int
    page_token: str
    def __init__(self, unit: _Optional[str] = ..., civil_code: _Optional[str] = ..., online: _Optional[_Union[OnlineFilter, str]] = ..., text: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCamerasResponse(_message.Message):
    __slots__ = ("cameras", "next_page_token")
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cameras: _containers.RepeatedCompositeFieldContainer[Camera]
    next_page_token: str
    def __init__(self, cameras: _Optional[_Iterable[_Union[Camera, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCameraRequest(_message.Message):
    __slots__ = ("camera_id",)
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    def __init__(self, camera_id: _Optional[str] = ...) -> None: ...

class WatchCamerasRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CameraEvent(_message.Message):
    __slots__ = ("kind", "camera_id", "reason", "time")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CameraEvent.Kind]
        ADDED: _ClassVar[CameraEvent.Kind]
        REMOVED: _ClassVar[CameraEvent.Kind]
        ONLINE: _ClassVar[CameraEvent.Kind]
        OFFLINE: _ClassVar[CameraEvent.Kind]
    KIND_UNSPECIFIED: CameraEvent.Kind
    ADDED: CameraEvent.Kind
    REMOVED: CameraEvent.Kind
    ONLINE: CameraEvent.Kind
    OFFLINE: CameraEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    kind: CameraEvent.Kind
    camera_id: str
    reason: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[_Union[CameraEvent.Kind, str]] = ..., camera_id: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PullLiveRequest(_message.Message):
    __slots__ = ("camera_id", "substream")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSTREAM_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    substream: int
    def __init__(self, camera_id: _Optional[str] = ..., substream: _Optional[int] = ...) -> None: ...

class PullPlaybackRequest(_message.Message):
    __slots__ = ("camera_id", "start", "end", "speed")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    speed: float
    def __init__(self, camera_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., speed: _Optional[float] = ...) -> None: ...

class MediaMessage(_message.Message):
    __slots__ = ("info", "unit")
    INFO_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    info: StreamInfo
    unit: AccessUnit
    def __init__(self, info: _Optional[_Union[StreamInfo, _Mapping]] = ..., unit: _Optional[_Union[AccessUnit, _Mapping]] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("codec", "parameter_sets", "width", "height", "playback_session", "audio_codec")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_SETS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PLAYBACK_SESSION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CODEC_FIELD_NUMBER: _ClassVar[int]
    codec: str
    parameter_sets: _containers.RepeatedScalarFieldContainer[bytes]
    width: int
    height: int
    playback_session: str
    audio_codec: str
    def __init__(self, codec: _Optional[str] = ..., parameter_sets: _Optional[_Iterable[bytes]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., playback_session: _Optional[str] = ..., audio_codec: _Optional[str] = ...) -> None: ...

class AccessUnit(_message.Message):
    __slots__ = ("pts", "dts", "keyframe", "data", "capture_time", "audio", "codec")
    PTS_FIELD_NUMBER: _ClassVar[int]
    DTS_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    pts: int
    dts: int
    keyframe: bool
    data: bytes
    capture_time: _timestamp_pb2.Timestamp
    audio: bool
    codec: str
    def __init__(self, pts: _Optional[int] = ..., dts: _Optional[int] = ..., keyframe: _Optional[bool] = ..., data: _Optional[bytes] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., audio: _Optional[bool] = ..., codec: _Optional[str] = ...) -> None: ...

class ControlPlaybackRequest(_message.Message):
    __slots__ = ("session", "action", "offset", "time", "speed")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTION_UNSPECIFIED: _ClassVar[ControlPlaybackRequest.Action]
        PAUSE: _ClassVar[ControlPlaybackRequest.Action]
        RESUME: _ClassVar[ControlPlaybackRequest.Action]
        SEEK: _ClassVar[ControlPlaybackRequest.Action]
        SPEED: _ClassVar[ControlPlaybackRequest.Action]
    ACTION_UNSPECIFIED: ControlPlaybackRequest.Action
    PAUSE: ControlPlaybackRequest.Action
    RESUME: ControlPlaybackRequest.Action
    SEEK: ControlPlaybackRequest.Action
    SPEED: ControlPlaybackRequest.Action
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    session: str
    action: ControlPlaybackRequest.Action
    offset: float
    time: _timestamp_pb2.Timestamp
    speed: float
    def __init__(self, session: _Optional[str] = ..., action: _Optional[_Union[ControlPlaybackRequest.Action, str]] = ..., offset: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., speed: _Optional[float] = ...) -> None: ...

class ControlPlaybackReply(_message.Message):
    __slots__ = ("session", "paused", "speed", "offset")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    session: str
    paused: bool
    speed: float
    offset: float
    def __init__(self, session: _Optional[str] = ..., paused: _Optional[bool] = ..., speed: _Optional[float] = ..., offset: _Optional[float] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("camera_id",)
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    def __init__(self, camera_id: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("jpeg", "width", "height", "capture_time")
    JPEG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    jpeg: bytes
    width: int
    height: int
    capture_time: _timestamp_pb2.Timestamp
    def __init__(self, jpeg: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MoveRequest(_message.Message):
    __slots__ = ("camera_id", "pan", "tilt", "zoom")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    PAN_FIELD_NUMBER: _ClassVar[int]
    TILT_FIELD_NUMBER: _ClassVar[int]
    ZOOM_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    pan: float
    tilt: float
    zoom: float
    def __init__(self, camera_id: _Optional[str] = ..., pan: _Optional[float] = ..., tilt: _Optional[float] = ..., zoom: _Optional[float] = ...) -> None: ...

class StopRequest(_message.Message):
    __slots__ = ("camera_id",)
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    def __init__(self, camera_id: _Optional[str] = ...) -> None: ...

class PresetRequest(_message.Message):
    __slots__ = ("camera_id", "preset")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    preset: int
    def __init__(self, camera_id: _Optional[str] = ..., preset: _Optional[int] = ...) -> None: ...

class PtzReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
