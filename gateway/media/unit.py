"""The one media data model every adapter produces and every egress consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
import time

CLOCK_RATE = 90_000  # every pts/dts in the gateway is on the 90 kHz video clock

H264 = "h264"
H265 = "h265"
CODECS = (H264, H265)


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One coded picture as Annex-B bytes.

    ``params`` holds the parameter sets in force (SPS, PPS; VPS first for H.265) without
    start codes, so a reader that joins late can be primed without parsing the bitstream.
    A keyframe's ``data`` already carries them in front of the IDR slice.
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
