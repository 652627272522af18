"""Media model and hub: adapter → hub → egress, one way."""

from .hub import Hub, parse_key, stream_key
from .stream import Reader, ReaderLimits, Stream, StreamClosed, StreamStats
from .unit import CLOCK_RATE, CODECS, H264, H265, AccessUnit

__all__ = [
    "AccessUnit", "CLOCK_RATE", "CODECS", "H264", "H265", "Hub", "Reader", "ReaderLimits",
    "Stream", "StreamClosed", "StreamStats", "parse_key", "stream_key",
]
