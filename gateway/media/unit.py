"""The one media data model every adapter produces and every egress consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
import time

# Every pts/dts in the gateway, audio included, is on the 90 kHz clock (the PS/TS system clock),
# so one stream's audio and video share one timeline; an egress that sends audio converts to the
# codec's own rate (AUDIO_RATES) where its wire format wants that (RTP G.711: 8 kHz).
CLOCK_RATE = 90_000

H264 = "h264"
H265 = "h265"
CODECS = (H264, H265)  # video

PCMA = "pcma"  # G.711 A-law, 8 kHz mono, one byte per sample
PCMU = "pcmu"  # G.711 µ-law
AAC = "aac"  # ADTS frames as the device sent them
AUDIO_CODECS = frozenset((PCMA, PCMU, AAC))
AUDIO_RATES = {PCMA: 8000, PCMU: 8000}  # AAC: the rate its ADTS header states


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One coded picture as Annex-B bytes, or one piece of audio (``is_audio``).

    ``params`` holds the parameter sets in force (SPS, PPS; VPS first for H.265) without
    start codes, so a reader that joins late can be primed without parsing the bitstream.
    A keyframe's ``data`` already carries them in front of the IDR slice. Audio units carry the
    codec's own bytes (G.711 samples, ADTS frames), no params, and are never keyframes: readers
    that wait for a keyframe wait for the next picture, and audio resumes with it.
    """

    codec: str
    pts: int
    dts: int
    keyframe: bool
    data: bytes
    params: tuple[bytes, ...] = ()
    wallclock: float = field(default_factory=time.time)  # capture time, Unix seconds

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_audio(self) -> bool:
        return self.codec in AUDIO_CODECS
