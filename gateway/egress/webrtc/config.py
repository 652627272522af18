"""``[webrtc]``: the WHEP egress (R1 video wall)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import ConfigError, section

H265_MODES = ("transcode", "refuse")


@section("webrtc")
@dataclass(slots=True)
class WebRtcConfig:
    enabled: bool = True
    # addresses offered as ICE host candidates; empty = every non-loopback address (aioice default).
    # Tests and single-box demos use ["127.0.0.1"].
    host_addresses: list[str] = field(default_factory=list)
    stun_servers: list[str] = field(default_factory=list)  # none by default: no third-party lookups
    payload_size: int = 1200  # RTP payload bytes (FU-A fragments)
    viewer_queue_bytes: int = 2 * 1024 * 1024  # per-viewer backlog before it skips to the next keyframe
    burst_chunk_bytes: int = 32 * 1024  # cached-GOP catch-up: bytes sent per tick …
    burst_interval: float = 0.002  # … and the tick, so a joining viewer's socket is not flooded
    burst_step: int = 90  # RTP ticks between cached frames replayed on join (1 ms: shown at once)
    keyframe_min_interval: float = 1.0  # seconds between keyframe requests to one camera
    connect_timeout: float = 20.0  # a session whose ICE/DTLS does not connect in time is closed
    # a viewer whose browser cannot take a camera's H.265: "transcode" it to H.264 (one encoder per
    # camera, shared by all such viewers, logged), or "refuse" (the WHEP POST answers 415 with why)
    h265: str = "transcode"
    transcode_threads: int = 1  # codec threads of that transcode: the most cores one camera's costs

    def __post_init__(self) -> None:
        if self.h265 not in H265_MODES:
            raise ConfigError(f"webrtc.h265: expected one of {', '.join(H265_MODES)}, got {self.h265!r}")
        if self.transcode_threads < 1:
            raise ConfigError("webrtc.transcode_threads: expected at least 1")
