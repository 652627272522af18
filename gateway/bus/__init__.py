"""Event bus: in-process by default, ZeroMQ between processes and nodes."""

from .base import Bus, LocalBus, Subscription
from .events import (Alarm, ChannelAdded, ChannelConflict, ChannelRemoved, ChannelState, Event, MobilePosition,
                     StreamState, StreamStatsEvent)

__all__ = [
    "Alarm", "Bus", "ChannelAdded", "ChannelConflict", "ChannelRemoved", "ChannelState", "Event", "LocalBus",
    "MobilePosition", "StreamState", "StreamStatsEvent", "Subscription",
]
