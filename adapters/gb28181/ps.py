"""MPEG-PS (ISO/IEC 13818-1 program stream) as GB/T 28181 devices push it (R1).

:class:`PsDemuxer` is incremental: it takes the live byte stream in arbitrary chunks (one RTP
payload at a time) and returns the access units it completed, without threads or PyAV (PyAV's
demuxer cannot resume after a short read, see notes/python-stack.md). One video access unit is
one PTS; it may span many PES packets, and it is emitted when the next one begins. Each audio
PES is one audio unit, emitted at once, of the codec the PSM names for its stream: G.711A
(0x90), G.711U (0x91) or ADTS AAC (0x0F); G.722 (0x92), G.723.1 (0x93), G.729 (0x99) and
any other type, or audio before any PSM, are counted in ``audio_unsupported`` and logged once.
Garbage is skipped by scanning for the next system start code (``00 00 01`` then a byte >= 0xB9,
which never occurs inside a NAL unit) and counted in ``errors``.

The muxer (``mux_ps``, for the simulator and the tests) lives in :mod:`.psmux`.
"""

from __future__ import annotations

import logging

from gateway.media import H264, H265, AccessUnit
from gateway.media.nal import ParamTracker, find_start, join_annexb, split_annexb

from .psaudio import AUDIO_NAMES, AUDIO_TYPES, audio_ticks
from .psmux import AUDIO_ID, VIDEO_ID, mux_ps, pack_header, system_and_psm

log = logging.getLogger(__name__)

PACK, END, SYSTEM, PSM = 0xBA, 0xB9, 0xBB, 0xBC
STREAM_TYPES = {0x1B: H264, 0x24: H265}  # video stream types we carry
MAX_BUFFER = 4 * 1024 * 1024  # bytes held waiting for the end of one packet before giving up
MAX_UNIT = 8 * 1024 * 1024  # one access unit larger than this is garbage
_WRAP = 1 << 33

__all__ = ["AUDIO_TYPES", "PsDemuxer", "guess_codec", "mux_ps", "pack_header", "scan_unit", "system_and_psm"]


def _read_ts(b: bytes | bytearray, i: int) -> int:
    return (((b[i] >> 1) & 7) << 30) | (b[i + 1] << 22) | ((b[i + 2] >> 1) << 15) | (b[i + 3] << 7) | (b[i + 4] >> 1)


def scan_unit(codec: str, data: bytes) -> tuple[bool, list[bytes]]:
    """(keyframe, parameter sets) of an Annex-B access unit. Stops at the first slice: what
    follows is more of the same picture, so the bulk of the data is never scanned or copied."""
    params: list[bytes] = []
    h265 = codec == H265
    n = len(data)
    i = find_start(data)
    while 0 <= i < n - 3:
        begin = i + 3
        t = (data[begin] >> 1) & 0x3F if h265 else data[begin] & 0x1F
        if (t < 32) if h265 else (1 <= t <= 5):
            return (16 <= t <= 21) if h265 else t == 5, params
        i = find_start(data, begin)
        if (32 <= t <= 34) if h265 else t in (7, 8):
            end = n if i < 0 else i
            while end > begin and data[end - 1] == 0:
                end -= 1
            params.append(data[begin:end])
    return False, params


def guess_codec(nals: list[bytes]) -> str | None:
    """H.264 or H.265 from parameter-set NAL headers, for streams without a PSM."""
    for nal in nals:
        if len(nal) > 1 and nal[0] in (0x40, 0x42, 0x44) and nal[1] == 0x01:
            return H265
        if nal[0] & 0x9F in (0x07, 0x08):  # forbidden bit 0, H.264 SPS/PPS
            return H264
    return None


class PsDemuxer:
    """Live PS byte stream in, access units (with parameter sets) out. Never raises on input."""

    def __init__(self, codec_hint: str | None = None) -> None:
        self._buf = bytearray()
        self._scan = 0  # where the search for the end of a length-0 PES resumes
        self._need = 0  # buffered bytes needed before parsing can make progress
        self._body = 0  # bytes of the current video PES body still to come (they skip the buffer)
        self._keep = False  # whether that body belongs to a unit (not to one whose start was lost)
        self._synced = True
        self._codec: str | None = None  # from the PSM
        self._hint = codec_hint
        self._tracker: ParamTracker | None = None
        self._params: tuple[bytes, ...] = ()
        self._chunks: list[bytes] = []
        self._size = 0
        self._pts: int | None = None
        self._dts = 0
        self._damaged = False
        self._last_raw: int | None = None
        self._wrap = 0
        self.errors = 0  # resyncs over garbage, malformed headers, overlong packets
        self.dropped = 0  # units dropped: damaged, undecodable (no parameter sets yet), unsupported
        self.audio_bytes = 0
        self.audio_units = 0
        self.audio_unsupported = 0  # audio PES dropped: a stream type we do not carry, or no PSM yet
        self._audio_types: dict[int, int] = {}  # PES stream id -> PSM stream type
        self._audio_pts: int | None = None  # where the next audio PES without a PTS starts
        self._audio_raw: int | None = None
        self._audio_wrap = 0
        self._refused_types: set[int] = set()
        self.units = 0
        self.psm_seen = False

    @property
    def codec(self) -> str | None:
        return self._tracker.codec if self._tracker else self._codec

    def discontinuity(self) -> None:
        """Bytes were lost (RTP gap, reconnect): drop partial data and resync."""
        self._damaged = self._damaged or bool(self._chunks)
        self._buf.clear()
        self._scan = self._need = self._body = 0
        self._pts = None  # data without a PTS cannot be placed until the next unit starts

    def flush(self) -> list[AccessUnit]:
        """The unit in progress, at the end of a stream (an end code closes a length-0 PES)."""
        out = [] if self._body else self.feed(b"\x00\x00\x01\xb9")
        if self._body:  # the stream stopped inside a PES: that unit is incomplete
            self._damaged = True
        self._buf.clear()
        self._scan = self._need = self._body = 0
        self._finish(out)
        self._pts = None
        return out

    # -- parsing -----------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[AccessUnit]:
        body = self._body
        if body:  # the hot path: more of a video PES body, kept as is without copying
            k = len(data)
            if k <= body:
                self._body = body - k
                if self._keep and type(data) is bytes and self._size + k <= MAX_UNIT:
                    self._chunks.append(data)
                    self._size += k
                else:
                    self._take(data)
                return []
            self._take(data[:body])
            data = data[body:]
            self._body = 0
        buf = self._buf
        buf += data
        n = len(buf)
        if n < self._need:  # a header or PES we already know the length of is still short
            return []
        self._need = 0
        out: list[AccessUnit] = []
        pos = 0
        while n - pos >= 4:
            if buf[pos] or buf[pos + 1] or buf[pos + 2] != 1 or buf[pos + 3] < END:
                pos = self._resync(pos)
                continue
            sid = buf[pos + 3]
            if sid == PACK:
                if n - pos < 5:
                    break
                b4 = buf[pos + 4]
                if b4 & 0xC0 == 0x40:  # MPEG-2
                    if n - pos < 14:
                        break
                    size = 14 + (buf[pos + 13] & 7)
                elif b4 & 0xF0 == 0x20:  # MPEG-1
                    size = 12
                else:
                    pos = self._bad(pos)
                    continue
                if n - pos < size:
                    break
                pos += size
                self._synced = True
                continue
            if sid == END:
                pos += 4
                continue
            if n - pos < 6:
                break
            length = (buf[pos + 4] << 8) | buf[pos + 5]
            if length == 0 and VIDEO_ID <= sid <= 0xEF:
                end = self._unbounded_end(pos, n)
                if end < 0:
                    if n - pos > MAX_BUFFER:
                        pos = self._bad(pos)
                        continue
                    break
            else:
                end = pos + 6 + length
                if end > n:
                    if VIDEO_ID <= sid <= 0xEF and n - pos >= 9 and buf[pos + 6] & 0xC0 == 0x80 \
                            and n >= pos + 9 + buf[pos + 8]:
                        # header complete: take what is here, the rest of the body bypasses the buffer
                        if not self._video(buf, pos, n, out):
                            pos = self._bad(pos)
                            continue
                        self._body = end - n
                        self._synced = True
                        pos = n
                        break
                    self._need = end - pos
                    break
            self._scan = 0
            if VIDEO_ID <= sid <= 0xEF:
                if not self._video(buf, pos, end, out):
                    pos = self._bad(pos)
                    continue
            elif sid == PSM:
                self._psm(bytes(buf[pos:end]))
            elif AUDIO_ID <= sid <= 0xDF:
                self._audio(buf, pos, end, sid, out)
            self._synced = True
            pos = end
        if pos:
            del buf[:pos]
            if self._scan:
                self._scan = max(0, self._scan - pos)
        return out

    def _resync(self, pos: int) -> int:
        """Skip to the next system start code; keep a possible partial one at the tail."""
        if self._synced:
            self._synced = False
            self.errors += 1
            self._damaged = bool(self._chunks)
        buf = self._buf
        i = find_start(buf, pos + 1)
        while i >= 0 and i + 3 < len(buf) and buf[i + 3] < END:
            i = find_start(buf, i + 1)
        if i < 0:
            return max(pos + 1, len(buf) - 2)
        return i

    def _bad(self, pos: int) -> int:
        self._synced = True  # so _resync counts this one
        return self._resync(pos)

    def _unbounded_end(self, pos: int, n: int) -> int:
        """End of a PES with length 0: the next system start code (NAL data cannot hold one)."""
        buf = self._buf
        i = find_start(buf, max(pos + 9, self._scan))
        while i >= 0:
            if i + 3 >= n:
                self._scan = i
                return -1
            if buf[i + 3] >= END:
                return i
            i = find_start(buf, i + 3)
        self._scan = max(pos + 9, n - 3)
        return -1

    def _psm(self, pkt: bytes) -> None:
        try:
            info_len = (pkt[8] << 8) | pkt[9]
            i = 10 + info_len
            map_len = (pkt[i] << 8) | pkt[i + 1]
            i += 2
            stop = min(i + map_len, len(pkt))
            while i + 4 <= stop:
                stype, esid, es_info = pkt[i], pkt[i + 1], (pkt[i + 2] << 8) | pkt[i + 3]
                if VIDEO_ID <= esid <= 0xEF:
                    self._codec = STREAM_TYPES.get(stype, f"0x{stype:02x}")
                    self.psm_seen = True
                elif AUDIO_ID <= esid <= 0xDF:
                    self._audio_types[esid] = stype
                i += 4 + es_info
        except IndexError:
            self.errors += 1

    def _video(self, buf: bytearray, pos: int, end: int, out: list[AccessUnit]) -> bool:
        header = _pes_header(buf, pos, end)
        if header is None:
            return False
        start, raw_pts, raw_dts = header
        if raw_pts is not None:
            pts = self._unwrap(raw_pts)
            dts = pts if raw_dts is None else pts - ((raw_pts - raw_dts) % _WRAP)
            if pts != self._pts:
                self._finish(out)
                self._pts, self._dts = pts, dts
        elif self._pts is None:
            self.dropped += 1  # continuation of a unit whose start we never saw
            self._keep = False
            return True
        self._keep = True
        if start < end:
            with memoryview(buf) as view:  # one copy, not a bytearray slice and then bytes
                self._take(bytes(view[start:end]))
        return True

    def _audio(self, buf: bytearray, pos: int, end: int, sid: int, out: list[AccessUnit]) -> None:
        """One audio PES as one audio unit; its PTS, else where the previous one ended."""
        self.audio_bytes += end - pos
        stype = self._audio_types.get(sid)
        codec = AUDIO_TYPES.get(stype) if stype is not None else None
        if codec is None:  # before any PSM (normal while joining a stream), or a type we do not carry
            self.audio_unsupported += 1
            if stype is not None and stype not in self._refused_types:
                self._refused_types.add(stype)
                log.info("PS audio stream 0x%02x dropped: %s is not carried (G.711A/U and AAC are)", sid,
                         AUDIO_NAMES.get(stype, f"stream type 0x{stype:02x}"))
            return
        header = _pes_header(buf, pos, end)
        if header is None:
            self.errors += 1
            return
        start, raw, _ = header
        if start >= end:
            return
        data = bytes(buf[start:end])
        if raw is not None:
            last = self._audio_raw
            if last is not None and last - raw > _WRAP // 2:
                self._audio_wrap += _WRAP
            self._audio_raw = raw
            pts = raw + self._audio_wrap
        elif self._audio_pts is not None:
            pts = self._audio_pts
        else:
            self.audio_unsupported += 1  # no timestamp to place it by yet
            return
        self._audio_pts = pts + audio_ticks(codec, data)
        self.audio_units += 1
        out.append(AccessUnit(codec, pts, pts, False, data))

    def _take(self, data: bytes | bytearray | memoryview) -> None:
        if not self._keep:
            return
        self._chunks.append(bytes(data))  # no copy for bytes, the usual RTP payload
        self._size += len(data)
        if self._size > MAX_UNIT:
            self._chunks, self._size, self._pts, self._keep = [], 0, None, False
            self.errors += 1

    def _unwrap(self, raw: int) -> int:
        last = self._last_raw
        if last is not None and last - raw > _WRAP // 2:
            self._wrap += _WRAP
        self._last_raw = raw
        return raw + self._wrap

    # -- access units ------------------------------------------------------------
    def _finish(self, out: list[AccessUnit]) -> None:
        chunks = self._chunks
        if not chunks:
            self._damaged = False
            return
        self._chunks, self._size = [], 0
        if self._damaged:
            self._damaged = False
            self.dropped += 1
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        tracker = self._tracker
        if tracker is None:
            codec = self._codec or self._hint or guess_codec(split_annexb(data))
            if codec not in (H264, H265):
                self.dropped += 1
                return
            tracker = self._tracker = ParamTracker(codec)
            self._params = ()
        elif self._codec in (H264, H265) and self._codec != tracker.codec:
            tracker = self._tracker = ParamTracker(self._codec)
            self._params = ()
        key, sets = scan_unit(tracker.codec, data)
        has_params = bool(sets)
        if sets:
            tracker.observe(sets)
        if not tracker.complete():
            self.dropped += 1
            return
        if has_params or not self._params:
            self._params = tracker.params
        params = self._params
        if key and not has_params:
            data = join_annexb(params) + data
        self.units += 1
        out.append(AccessUnit(tracker.codec, self._pts or 0, self._dts, key, data, params))


def _pes_header(b: bytearray, pos: int, end: int) -> tuple[int, int | None, int | None] | None:
    """(payload start, PTS, DTS) of an MPEG-2 or MPEG-1 PES header; None if malformed."""
    if end - pos < 9:
        return None
    if b[pos + 6] & 0xC0 == 0x80:  # MPEG-2
        flags = b[pos + 7] >> 6
        start = pos + 9 + b[pos + 8]
        if start > end or (flags & 2 and start < pos + 14) or (flags == 3 and start < pos + 19):
            return None
        if flags & 2:
            return start, _read_ts(b, pos + 9), _read_ts(b, pos + 14) if flags == 3 else None
        return start, None, None
    i = pos + 6  # MPEG-1: stuffing, optional STD buffer, then the timestamps
    while i < end and b[i] == 0xFF and i < pos + 22:
        i += 1
    if i + 2 <= end and b[i] & 0xC0 == 0x40:
        i += 2
    if i >= end:
        return None
    kind = b[i] & 0xF0
    if kind == 0x20 and i + 5 <= end:
        return i + 5, _read_ts(b, i), None
    if kind == 0x30 and i + 10 <= end:
        return i + 10, _read_ts(b, i), _read_ts(b, i + 5)
    if b[i] == 0x0F:
        return i + 1, None, None
    return None
