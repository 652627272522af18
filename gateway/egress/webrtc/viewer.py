"""One WHEP viewer: aiortc negotiated ICE and DTLS; this sends the shared RTP payloads.

Per packet the viewer only writes a 12-byte header (its own sequence number, timestamp, SSRC and
payload type), protects it with its DTLS-derived SRTP session and hands it to the ICE socket.
RTCP from the browser (NACK, PLI/FIR, receiver reports) arrives here instead of aiortc's sender,
and the sender reports (SR) are ours, so they describe what was really sent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import logging
import random
import struct
import time

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_FIR, RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRrPacket, RtcpRtpfbPacket,
)

from . import compat
from .audio import AudioOut
from .config import WebRtcConfig
from .packetize import AudioFrame, Frame
from .gso import GsoSender
from .reports import SenderReports, ntp
from .srtp import fast_protect

log = logging.getLogger(__name__)
HEADER = struct.Struct("!BBHII")
HISTORY = 512  # packets kept per viewer for NACK (≈ 2.5 s at 2 Mbit/s); payloads are shared


class Viewer(SenderReports):
    clock_rate = 90000

    def __init__(self, session: str, sender: RTCRtpSender, cfg: WebRtcConfig,
                 on_keyframe_request: Callable[[Viewer], None], on_ready: Callable[[Viewer], None],
                 cname: str) -> None:
        self.session = session
        self.cfg = cfg
        self._sender = sender
        self._on_keyframe_request = on_keyframe_request
        self._on_ready = on_ready
        self._cname = cname.encode()
        self.ssrc = compat.sender_ssrc(sender)
        self.payload_types: dict[str, int] = {}  # codec (H264/H265) -> the negotiated payload type
        self.seq = random.getrandbits(16)
        self.ts_offset = 0  # live frames: rtp ts = pts + ts_offset
        self.last_ts = random.getrandbits(31)
        self.last_wallclock = 0.0
        self.history: list[tuple[bytes, bytes] | None] = [None] * HISTORY
        self.backlog: deque[tuple[Frame, int]] = deque()
        self._backlog_bytes = 0
        self._drainer: asyncio.Task[None] | None = None
        self._gso: GsoSender | None = None
        self.need_key = True  # nothing is sent before a keyframe
        self.ready = asyncio.Event()  # DTLS up, first packets may go
        self.closed = False
        self.refused: tuple[str, str] | None = None  # (error, message) when the fan-out could not serve it
        self._protect = None
        self.audio: AudioOut | None = None  # the audio track, when the answer has one
        self.packets = self.octets = 0
        self.frames = self.skips = self.nacks = self.retransmits = self.keyframe_requests = 0
        self.rtt: float | None = None
        self.fraction_lost = 0
        self.started_at = time.monotonic()
        self.replayed_at = 0.0
        self.first_packet_at: float | None = None
        compat.adopt_sender(sender, self._run_rtp, self._run_rtcp, self._handle_rtcp)

    def accepts(self, codec: str) -> bool:
        return codec in self.payload_types

    @property
    def _dtls(self):  # noqa: ANN202 - RTCDtlsTransport
        """The sender's transport as it is now: with BUNDLE aiortc moves a sender that is not the
        first m-line (video after audio) onto the first one's transport after the offer is applied."""
        return self._sender.transport

    # -- taking over aiortc's sender -------------------------------------------------------
    async def _run_rtp(self, codec) -> None:  # noqa: ANN001 - RTCRtpCodecParameters
        started, exited = compat.run_events(self._sender, "rtp")
        started.set()
        self._protect = fast_protect(compat.srtp_session(self._dtls))
        self.ready.set()
        self._on_ready(self)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        finally:
            self.closed = True
            exited.set()

    async def _handle_rtcp(self, packet) -> None:  # noqa: ANN001
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.nacks += 1
            for seq in packet.lost:
                self._retransmit(seq)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self.keyframe_requests += 1
            self._on_keyframe_request(self)
        elif isinstance(packet, RtcpRrPacket):
            for report in packet.reports:
                if report.ssrc == self.ssrc:
                    self.fraction_lost = report.fraction_lost
                    if report.lsr:
                        now = (ntp(time.time()) >> 16) & 0xFFFFFFFF
                        self.rtt = max(0.0, ((now - report.lsr - report.dlsr) & 0xFFFFFFFF) / 65536)

    # -- sending ---------------------------------------------------------------------------
    def _send_frame(self, frame: Frame, ts: int) -> None:
        sender, addr = self._route()
        if sender is None:
            return
        pt = self.payload_types.get(frame.codec)
        if pt is None:  # a codec this viewer did not negotiate never reaches its decoder
            return
        protect, seq, ssrc, history, pack = self._protect, self.seq, self.ssrc, self.history, HEADER.pack
        last = len(frame.payloads) - 1
        packets = []
        for i, payload in enumerate(frame.payloads):
            header = pack(0x80, pt | 0x80 if i == last else pt, seq, ts, ssrc)
            history[seq % HISTORY] = (header, payload)
            packets.append(protect(header + payload))
            seq = (seq + 1) & 0xFFFF
        sender.send(packets, addr)
        self.seq = seq
        self.packets += last + 1
        self.octets += frame.size
        self.frames += 1
        self.last_ts = ts
        self.last_wallclock = frame.wallclock
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()

    def _route(self) -> tuple[GsoSender | None, tuple | None]:
        """The nominated ICE pair's socket (aioice), looked up per frame: ICE may renominate."""
        transport, addr = compat.nominated(self._dtls)
        if transport is None:
            return None, None
        if self._gso is None or self._gso.transport is not transport:
            if self._gso is not None:
                self._gso.close()
            self._gso = GsoSender(transport)
        return self._gso, addr

    def _retransmit(self, seq: int) -> None:
        entry = self.history[seq % HISTORY]
        sender, addr = self._route()
        if entry is None or sender is None or HEADER.unpack_from(entry[0])[2] != seq:
            return
        header, payload = entry
        sender.transport.sendto(self._protect(header + payload), addr)
        self.retransmits += 1

    def write_buffer(self) -> int:
        sender, _ = self._route()
        return sender.transport.get_write_buffer_size() if sender is not None else 0

    # -- what the fan-out calls ------------------------------------------------------------
    def start(self, gop: list[Frame]) -> None:
        """Join (or restart after PLI) from the cached GOP: keyframe first, the rest replayed
        quickly with timestamps 1 ms apart so the browser shows the live picture at once."""
        if not gop or self.closed:
            self.need_key = True
            return
        self._clear_backlog()
        base = (self.last_ts + 3000) & 0xFFFFFFFF
        step = self.cfg.burst_step
        for i, frame in enumerate(gop):
            self._enqueue(frame, (base + i * step) & 0xFFFFFFFF)
        self.ts_offset = base + (len(gop) - 1) * step - gop[-1].pts
        self.need_key = False
        self._kick()

    def push(self, frame: Frame) -> None:
        """A live frame; never blocks. A viewer that cannot keep up skips to the next keyframe."""
        if self.closed or self._protect is None or frame.codec not in self.payload_types:
            return
        if self.need_key:
            if not frame.keyframe:
                return
            self.need_key = False
            self.ts_offset = (self.last_ts + 3000 - frame.pts) if self.frames else (self.last_ts - frame.pts)
        ts = (frame.pts + self.ts_offset) & 0xFFFFFFFF
        if self.backlog or self.write_buffer() > self.cfg.viewer_queue_bytes // 4:
            self._enqueue(frame, ts)
            self._kick()
        else:
            self._send_frame(frame, ts)

    def _enqueue(self, frame: Frame, ts: int) -> None:
        if self._backlog_bytes + frame.size > self.cfg.viewer_queue_bytes and self.backlog:
            self.skips += 1
            self._clear_backlog()
            if not frame.keyframe:
                self.need_key = True
                return
        self.backlog.append((frame, ts))
        self._backlog_bytes += frame.size

    def _clear_backlog(self) -> None:
        self.backlog.clear()
        self._backlog_bytes = 0

    def _kick(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Sends the backlog a chunk per tick, so a burst never floods the viewer's socket."""
        await self.ready.wait()
        chunk, limit = self.cfg.burst_chunk_bytes, self.cfg.viewer_queue_bytes // 4
        while self.backlog and not self.closed:
            budget = chunk
            while self.backlog and budget > 0 and self.write_buffer() <= limit:
                frame, ts = self.backlog.popleft()
                self._backlog_bytes -= frame.size
                self._send_frame(frame, ts)
                budget -= frame.size
            if self.backlog:
                await asyncio.sleep(self.cfg.burst_interval)

    def push_audio(self, frame: AudioFrame) -> None:
        """A piece of the camera's audio: sent at once, live (never replayed with the GOP)."""
        if self.audio is not None and not self.closed:
            self.audio.send(frame)

    def close(self) -> None:
        self.closed = True
        if self.audio is not None:
            self.audio.close()
        self._clear_backlog()
        if self._drainer is not None:
            self._drainer.cancel()
        if self._gso is not None:
            self._gso.close()

    def stats(self) -> dict:
        return {"session": self.session, "frames": self.frames, "packets": self.packets, "bytes": self.octets,
                "skips": self.skips, "nacks": self.nacks, "retransmits": self.retransmits,
                "gso_trains": self._gso.trains if self._gso else 0,
                "keyframe_requests": self.keyframe_requests, "rtt": self.rtt, "backlog_bytes": self._backlog_bytes,
                "audio": self.audio.stats() if self.audio is not None else None}
