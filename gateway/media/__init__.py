"""Media model and hub: adapter → hub → egress, one way."""

from .hub import Hub, parse_key, stream_key
from .stream import Reader, ReaderLimits, Stream, StreamClosed, StreamStats
from .unit import AAC, AUDIO_CODECS, AUDIO_RATES, CLOCK_RATE, CODECS, H264, H265, PCMA, PCMU, AccessUnit

__all__ = [
    "AAC", "AUDIO_CODECS", "AUDIO_RATES", "AccessUnit", "CLOCK_RATE", "CODECS", "H264", "H265", "Hub",
    "PCMA", "PCMU", "Reader", "ReaderLimits", "Stream", "StreamClosed", "StreamStats", "parse_key", "stream_key",
]
