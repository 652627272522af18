"""Every use of aiortc's private internals (aiortc 1.16), in one place.

The WHEP egress sends its own RTP through aiortc's ICE/DTLS, and aiortc has no H.265. What this
module reaches into, and why:

* H.265 (RFC 7798) is added to aiortc's codec table, so offers with ``video/H265`` can be
  answered with it; the answer repeats the offer's ``profile-id``/``tier-flag``/``level-id``.
  aiortc never encodes it (the viewer sends the camera's own payloads); for aiortc as a
  *receiver* (the test and troubleshooting client) the RFC 7798 depayloader and a PyAV HEVC
  decoder are put beside aiortc's H.264 ones.
* The viewer takes over ``RTCRtpSender``'s RTP and RTCP loops, waits on its run events, and
  writes SRTP with the DTLS transport's session to the nominated ICE pair's socket.

An aiortc upgrade that moves any of these fails here, at import or first use, not in the wall.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc import RTCDtlsTransport, RTCRtpSender, RTCRtpTransceiver, rtcrtpreceiver
from aiortc import codecs as aiortc_codecs
from aiortc.codecs.base import Decoder
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
from aiortc.sdp import SessionDescription

H265_MIME = "video/H265"
H265_PAYLOAD_TYPE = 103  # after aiortc's own dynamic types (VP8 97/98, H.264 99-102)
# what aiortc offers as a receiver (PyAV decodes Main profile, main tier, up to level 5.2), in the
# form browsers use; an answer takes the offer's own parameters instead
H265_PARAMETERS = {"level-id": 156, "profile-id": 1, "tier-flag": 0, "tx-mode": "SRST"}
_AP, _FU = 48, 49
_START = b"\x00\x00\x00\x01"


# -- H.265 in aiortc's codec table ---------------------------------------------------------------
def h265_depayload(payload: bytes) -> bytes:
    """One RFC 7798 payload as Annex-B bytes (a fragment's continuation carries no start code)."""
    if len(payload) < 3:
        raise ValueError("H.265 payload shorter than its header")
    kind = (payload[0] >> 1) & 0x3F
    if kind == _AP:
        out, pos = [], 2
        while pos + 2 <= len(payload):
            size = int.from_bytes(payload[pos : pos + 2], "big")
            out.append(_START + payload[pos + 2 : pos + 2 + size])
            pos += 2 + size
        return b"".join(out)
    if kind == _FU:
        fu = payload[2]
        if fu & 0x80:
            head = bytes([(payload[0] & 0x81) | (fu & 0x3F) << 1, payload[1]])
            return _START + head + payload[3:]
        return payload[3:]
    return _START + payload


class H265Decoder(Decoder):
    """aiortc's decoder interface over PyAV's HEVC decoder (receiving side only)."""

    def __init__(self) -> None:
        self.codec = av.CodecContext.create("hevc", "r")

    def decode(self, encoded_frame) -> list:  # noqa: ANN001 - aiortc JitterFrame
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = Fraction(1, 90000)
        return list(self.codec.decode(packet))


def _register_h265() -> None:
    video = aiortc_codecs.CODECS["video"]
    if any(c.mimeType.lower() == H265_MIME.lower() for c in video):
        return
    video.append(RTCRtpCodecParameters(
        mimeType=H265_MIME, clockRate=90000, payloadType=H265_PAYLOAD_TYPE,
        rtcpFeedback=[RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli"),
                      RTCRtcpFeedback(type="goog-remb")],
        parameters=dict(H265_PARAMETERS)))
    depayload, get_decoder = rtcrtpreceiver.depayload, rtcrtpreceiver.get_decoder

    def depayload_h265(codec: RTCRtpCodecParameters, payload: bytes) -> bytes:
        return h265_depayload(payload) if codec.name.upper() == "H265" else depayload(codec, payload)

    def decoder_h265(codec: RTCRtpCodecParameters) -> Decoder:
        return H265Decoder() if codec.mimeType.lower() == H265_MIME.lower() else get_decoder(codec)

    rtcrtpreceiver.depayload = depayload_h265
    rtcrtpreceiver.get_decoder = decoder_h265


_register_h265()


def offers_h265(offer: str) -> bool:
    """Whether an SDP offer's first video section lists H.265."""
    for media in SessionDescription.parse(offer).media:
        if media.kind == "video":
            return any(c.mimeType.lower() == H265_MIME.lower() for c in media.rtp.codecs)
    return False


def negotiated(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs the applied remote description left on the transceiver (empty: nothing common)."""
    return list(transceiver._codecs)


def answer_h265_as_offered(transceiver: RTCRtpTransceiver, offer: str) -> None:
    """aiortc answers with its own (empty) H.265 parameters; browsers match profile and tier, so the
    answer takes the offered entry's parameters, preferring Main profile (``profile-id=1``), the
    profile cameras send."""
    offered = [c for m in SessionDescription.parse(offer).media if m.kind == "video"
               for c in m.rtp.codecs if c.mimeType.lower() == H265_MIME.lower()]
    if not offered:
        return
    chosen = next((c for c in offered if str(c.parameters.get("profile-id", 1)) == "1"), offered[0])
    for codec in transceiver._codecs:
        if codec.mimeType.lower() == H265_MIME.lower():
            codec.payloadType = chosen.payloadType
            codec.parameters = dict(chosen.parameters)


# -- taking over the RTP sender ------------------------------------------------------------------
def adopt_sender(sender: RTCRtpSender, run_rtp: Callable, run_rtcp: Callable, handle_rtcp: Callable) -> None:
    """aiortc starts ``_run_rtp``/``_run_rtcp`` from ``send()`` and routes RTCP to
    ``_handle_rtcp_packet``; instance attributes take their place."""
    sender._run_rtp = run_rtp  # type: ignore[method-assign]
    sender._run_rtcp = run_rtcp  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


def sender_ssrc(sender: RTCRtpSender) -> int:
    return sender._ssrc


def run_events(sender: RTCRtpSender, loop: str) -> tuple[asyncio.Event, asyncio.Event]:
    """The (started, exited) events aiortc's ``stop()`` waits on for the ``rtp`` or ``rtcp`` loop."""
    return (getattr(sender, f"_RTCRtpSender__{loop}_started"), getattr(sender, f"_RTCRtpSender__{loop}_exited"))


def srtp_session(dtls: RTCDtlsTransport):  # noqa: ANN201 - pylibsrtp.Session
    """The outbound SRTP session DTLS negotiated."""
    return dtls._tx_srtp


async def send_rtcp(dtls: RTCDtlsTransport, data: bytes) -> None:
    """Protect and send RTCP the way aiortc's own sender does."""
    await dtls._send_rtp(data)


def nominated(dtls: RTCDtlsTransport) -> tuple[asyncio.DatagramTransport | None, tuple | None]:
    """The nominated ICE pair's socket and peer address (aioice), or ``(None, None)`` before one."""
    pair = dtls.transport._connection._nominated.get(1)
    transport = pair.protocol.transport if pair is not None else None
    return (transport, pair.remote_addr) if transport is not None else (None, None)
