"""Camera protocol adapters; each folder turns one protocol into channels and access units."""

from .base import Adapter, AdapterContext, Channel, NotSupported, PtzCommand, RecordRange

__all__ = ["Adapter", "AdapterContext", "Channel", "NotSupported", "PtzCommand", "RecordRange"]
