"""The ``[rtsp]`` section: timeouts and the idle-camera probe (env ``VSGW_RTSP_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import section


@section("rtsp")
@dataclass(slots=True)
class RtspConfig:
    probe_interval: float = 30.0  # seconds between DESCRIBE probes of cameras nobody watches; 0 = off
    probe_concurrency: int = 16
    open_timeout: float = 10.0  # connect + DESCRIBE/SETUP/PLAY
    read_timeout: float = 5.0  # silence after which a playing stream counts as dead
    max_queue: int = 128  # access units between the puller thread and the loop
