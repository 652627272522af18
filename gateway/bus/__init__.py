"""Event bus: in-process by default, ZeroMQ between processes and nodes."""

from .base import Bus, LocalBus, Subscription
from .events import (Alarm, ChannelAdded, ChannelConflict, ChannelRemoved, ChannelState, Event, StreamState,
                     StreamStatsEvent)

__all__ = [
    "Alarm", "Bus", "ChannelAdded", "ChannelConflict", "ChannelRemoved", "ChannelState", "Event", "LocalBus",
    "StreamState", "StreamStatsEvent", "Subscription",
]
