"""Pulls one RTSP stream with FFmpeg's RTSP client (PyAV) in a worker thread.

FFmpeg does RTSP/RTP, both transports, digest/basic auth, RTP reordering and depacketisation;
its H.264/H.265 depacketisers emit Annex-B access units (length-prefixed data is converted
anyway). ``av_read_frame`` blocks, so each open stream owns a thread; units reach the event loop
through ``call_soon_threadsafe`` into a bounded queue that drops to the next keyframe when full.
A unit is handed on when the next one starts (one frame of delay): FFmpeg's parser may split one
picture into several packets, and the RTP timestamp is what joins them again.
"""

from __future__ import annotations

import asyncio
from collections import deque
import threading
import time

import av

from gateway.media import CLOCK_RATE, H264, H265, AccessUnit
from gateway.media.nal import ParamTracker, join_annexb, split_annexb

from .errors import CannotConnect, NotFound, RtspError, StreamLost, Unauthorized, UnsupportedCodec
from .target import Target

FFMPEG_CODECS = {"h264": H264, "hevc": H265}


class Puller:
    def __init__(self, target: Target, *, open_timeout: float, read_timeout: float, max_queue: int = 128) -> None:
        self.target = target
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._max_queue = max_queue
        self._queue: deque[AccessUnit | RtspError] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._need_key = False
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0  # units dropped because the loop fell behind the camera

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._work, name=f"rtsp:{self.target.netloc}", daemon=True).start()

    def stop(self) -> None:
        """The thread notices within one packet, or at the read timeout if the camera is silent."""
        self._stop.set()

    async def get(self) -> AccessUnit:
        while not self._queue:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._queue.popleft()
        if isinstance(item, RtspError):
            raise item
        return item

    # -- loop side -------------------------------------------------------------------
    def _deliver(self, item: AccessUnit | RtspError) -> None:
        if isinstance(item, AccessUnit):
            if self._need_key and not item.keyframe:
                self.dropped += 1
                return
            self._need_key = False
            if len(self._queue) >= self._max_queue:  # the loop is starved: restart at a keyframe
                self.dropped += len(self._queue)
                self._queue.clear()
                if not item.keyframe:
                    self._need_key = True
                    self.dropped += 1
                    return
        self._queue.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- worker thread ---------------------------------------------------------------
    def _post(self, item: AccessUnit | RtspError) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._deliver, item)  # type: ignore[union-attr]
            return True
        except RuntimeError:  # the loop is gone: nobody to deliver to
            return False

    def _work(self) -> None:
        options = {
            "rtsp_transport": self.target.transport,
            "timeout": str(int(self._read_timeout * 1_000_000)),  # socket I/O, microseconds
            "allowed_media_types": "video",
            "analyzeduration": "0",
            "probesize": "65536",
            "fflags": "nobuffer",
        }
        try:
            container = av.open(self.target.with_credentials(), options=options,
                                timeout=(self._open_timeout, self._read_timeout))
        except Exception as exc:  # noqa: BLE001 - FFmpeg/OSError mapped; anything else still reported
            self._post(_classify(exc, self.target, opening=True, timeout=self._open_timeout))
            return
        try:
            self._post(self._demux(container))
        except Exception as exc:  # noqa: BLE001 - never leave the loop waiting on a dead thread
            if not self._stop.is_set():
                self._post(_classify(exc, self.target, opening=False, timeout=self._read_timeout))
        finally:
            container.close()

    def _demux(self, container: av.container.InputContainer) -> RtspError:
        if not container.streams.video:
            return UnsupportedCodec("the camera offers no video stream; H.264 or H.265 only")
        video = container.streams.video[0]
        name = video.codec_context.name
        codec = FFMPEG_CODECS.get(name)
        if codec is None:
            return UnsupportedCodec(f"codec {name} is not supported; H.264 or H.265 only")
        params = ParamTracker(codec)
        extradata = video.codec_context.extradata or b""
        if extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
            params.observe(split_annexb(extradata))  # SPS/PPS from the SDP's sprop-parameter-sets
        tb = video.time_base
        scale_num, scale_den = tb.numerator * CLOCK_RATE, tb.denominator
        last_pts = 0
        started = False
        pending: tuple[int, int, list[bytes]] | None = None
        for packet in container.demux(video):
            if self._stop.is_set():
                return StreamLost("stopped")
            if packet.size == 0:
                continue
            raw = packet.pts if packet.pts is not None else packet.dts
            pts = raw * scale_num // scale_den if raw is not None else last_pts + CLOCK_RATE // 25
            dts = packet.dts * scale_num // scale_den if packet.dts is not None else pts
            last_pts = pts
            if pending is not None and pending[0] == pts:
                # FFmpeg's parser can split one picture (e.g. SPS/PPS repeated between the
                # slices of an IDR); one RTP timestamp is one access unit, so join them again
                pending[2].append(_annexb(bytes(packet)))
                continue
            if pending is not None:
                unit = _unit(codec, params, b"".join(pending[2]), pending[0], pending[1])
                if unit is not None and (started := started or unit.keyframe):  # start at a keyframe
                    if not self._post(unit):
                        return StreamLost("stopped")
            pending = (pts, dts, [_annexb(bytes(packet))])
        return StreamLost(f"{self.target.netloc} ended the stream")


def _unit(codec: str, params: ParamTracker, data: bytes, pts: int, dts: int) -> AccessUnit | None:
    nals = split_annexb(data)
    if not nals:
        return None
    key, has_params = params.observe(nals)
    if key and not has_params and params.complete():
        data = join_annexb(params.params) + data  # SPS/PPS only out of band: prime the keyframe
    return AccessUnit(codec, pts, dts, key, data, params.params, time.time())


def _annexb(data: bytes) -> bytes:
    """Annex-B as is; AVCC/HVCC (4-byte big-endian lengths) converted to it."""
    if data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return data
    out, i = [], 0
    while i + 4 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        out.append(data[i + 4:i + 4 + size])
        i += 4 + size
    return join_annexb(out)


def _classify(exc: BaseException, target: Target, *, opening: bool, timeout: float) -> RtspError:
    """FFmpeg's failure as a typed error; uses only ``strerror`` (``str(exc)`` holds the URL)."""
    errno = getattr(exc, "errno", None)
    why = (getattr(exc, "strerror", None) or type(exc).__name__).lower()
    if isinstance(exc, av.error.HTTPUnauthorizedError) or "401" in why:
        return Unauthorized("401 Unauthorized: check username/password")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return NotFound(f"404 Not Found: no stream at {target.path.partition('?')[0]} on {target.netloc}")
    if isinstance(exc, ConnectionRefusedError) or errno == 111:
        return CannotConnect(f"cannot connect to {target.netloc}: connection refused")
    if isinstance(exc, (av.error.ExitError, TimeoutError)) or errno == 110:  # our interrupt: a silent camera
        if opening:
            return CannotConnect(f"cannot connect to {target.netloc}: no answer within {timeout:g} s")
        return StreamLost(f"no data from {target.netloc} for {timeout:g} s")
    if opening:
        return CannotConnect(f"cannot open the stream from {target.netloc}: {why}")
    if isinstance(exc, av.error.EOFError) or "end of file" in why:
        return StreamLost(f"{target.netloc} closed the stream")
    return StreamLost(f"stream from {target.netloc} failed: {why}")
