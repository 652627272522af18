"""A WHEP viewer's audio track: the camera's G.711 payloads, shared by all its viewers, sent as they are.

The browser offers PCMA/PCMU in its audio section; the answer lists both (the camera's law first),
so whatever law the camera sends needs no transcoding. Per packet this only writes the viewer's
12-byte header (its sequence number, 8 kHz timestamp, SSRC, payload type), protects it with the
session's SRTP and sends it on the nominated ICE pair, as the video does. Sender reports map the
audio's RTP time to the camera's capture clock like the video's, so the browser can sync the two.
AAC (what some GB/T 28181 cameras send) cannot be played by browsers over WebRTC: the fan-out
counts and logs it and sends nothing.
"""

from __future__ import annotations

import asyncio
import random
import struct

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.sdp import SessionDescription

from gateway.media import PCMA, PCMU

from . import compat
from .packetize import AudioFrame
from .reports import SenderReports
from .srtp import fast_protect

HEADER = struct.Struct("!BBHII")
RATE = 8000
MIME = {"audio/pcma": PCMA, "audio/pcmu": PCMU}
MAX_WRITE_BUFFER = 256 * 1024  # a viewer whose socket holds this much loses audio packets, not the loop


def offered_g711(offer: str) -> bool:
    """Whether the offer's first audio section lists PCMA or PCMU."""
    for media in SessionDescription.parse(offer).media:
        if media.kind == "audio":
            return any(c.mimeType.lower() in MIME for c in media.rtp.codecs)
    return False


def preferences(first: str | None) -> list:
    """PCMA and PCMU only (never Opus, which the gateway would have to encode), ``first`` leading."""
    codecs = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() in MIME]
    return sorted(codecs, key=lambda c: MIME[c.mimeType.lower()] != first)


def payload_types(transceiver: RTCRtpTransceiver) -> dict[str, int]:
    out: dict[str, int] = {}
    for codec in compat.negotiated(transceiver):
        name = MIME.get(codec.mimeType.lower())
        if name is not None:
            out.setdefault(name, codec.payloadType)
    return out


class AudioOut(SenderReports):
    """The audio sender of one viewer's peer connection (aiortc's own loops taken over)."""

    clock_rate = RATE

    def __init__(self, sender: RTCRtpSender, cname: str) -> None:
        self._sender = sender
        self._cname = cname.encode()
        self.ssrc = compat.sender_ssrc(sender)
        self.payload_types: dict[str, int] = {}
        self.seq = random.getrandbits(16)
        self.ts_offset: int | None = None  # rtp ts = camera sample + ts_offset, fixed at the first packet
        self.next_start: int | None = None  # where the previous unit ended (codec clock)
        self.last_ts = random.getrandbits(31)
        self.last_wallclock = 0.0
        self.ready = asyncio.Event()
        self.closed = False
        self._protect = None
        self.packets = self.octets = self.dropped = 0
        compat.adopt_sender(sender, self._run_rtp, self._run_rtcp, self._handle_rtcp)

    async def _run_rtp(self, codec) -> None:  # noqa: ANN001 - RTCRtpCodecParameters
        started, exited = compat.run_events(self._sender, "rtp")
        started.set()
        self._protect = fast_protect(compat.srtp_session(self._sender.transport))
        self.ready.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        finally:
            self.closed = True
            exited.set()

    async def _handle_rtcp(self, packet) -> None:  # noqa: ANN001 - receiver reports: nothing to act on
        return

    def send(self, frame: AudioFrame) -> None:
        """The camera's payloads with this viewer's headers; a full socket drops them (audio is not
        worth queueing: a late packet is as good as lost to the browser's jitter buffer)."""
        pt = self.payload_types.get(frame.codec)
        if self.closed or self._protect is None or pt is None:
            return
        transport, addr = compat.nominated(self._sender.transport)
        if transport is None:
            return
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.dropped += len(frame.payloads)
            return
        resync = self.next_start is None or abs(frame.start - self.next_start) > RATE  # first, or a jump
        if self.ts_offset is None or resync:
            self.ts_offset = (self.last_ts + 160 - frame.start) & 0xFFFFFFFF
        self.next_start = frame.start + frame.size
        protect, seq, pack = self._protect, self.seq, HEADER.pack
        base = frame.start + self.ts_offset
        for i, (payload, offset) in enumerate(zip(frame.payloads, frame.offsets)):
            marker = 0x80 if resync and i == 0 else 0  # the start of a talkspurt (RFC 3551)
            ts = (base + offset) & 0xFFFFFFFF
            transport.sendto(protect(pack(0x80, pt | marker, seq, ts, self.ssrc) + payload), addr)
            seq = (seq + 1) & 0xFFFF
            self.last_ts = ts
        self.seq = seq
        self.packets += len(frame.payloads)
        self.octets += frame.size
        self.last_wallclock = frame.wallclock

    def close(self) -> None:
        self.closed = True

    def stats(self) -> dict:
        return {"packets": self.packets, "bytes": self.octets, "dropped": self.dropped}
