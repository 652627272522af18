"""WebRTC egress for the video wall (R1, R12): WHEP signalling through aiortc (ICE, DTLS),
H.264 and H.265 passthrough with RTP payloads built once per camera and per viewer only header rewrite
(H.265 transcoded once per camera for browsers without it),
SRTP and send; viewers start from the cached GOP. Also serves the wall page at ``/wall/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.http import public

from .config import WebRtcConfig
from .ice import limit_host_addresses
from .whep import EGRESS, WhepEgress, whep_delete, whep_offer, whep_patch, whep_stats, whep_status

if TYPE_CHECKING:
    from gateway.app import Gateway

WALL = Path(__file__).resolve().parents[2] / "web" / "wall"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@public
async def wall_file(request: web.Request) -> web.StreamResponse:
    """The wall's static files (public: they hold no data; every API call carries a token)."""
    name = request.match_info.get("tail") or "index.html"
    path = (WALL / name).resolve()
    if WALL not in path.parents or not path.is_file() or path.suffix not in TYPES:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": TYPES[path.suffix], "Cache-Control": "no-cache",
                                           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:"})


@public
async def wall_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/wall/" + (f"?{request.query_string}" if request.query_string else ""))


def setup(gw: Gateway) -> None:
    cfg = gw.config.get(WebRtcConfig)
    if not cfg.enabled:
        return
    limit_host_addresses(cfg.host_addresses)
    egress = WhepEgress(gw, cfg)
    gw.app[EGRESS] = egress
    gw.on_stop.append(egress.stop)
    api = gw.api
    sdp = {"type": "string", "description": "SDP"}
    api.route("POST", "/api/whep/{camera_id}", whep_offer, summary="WHEP: SDP offer in, SDP answer out (201, "
              "Location); X-Vsgw-Watermark when the viewer must see a watermark; X-Vsgw-Video says whether "
              "the camera's H.265 passes through or is transcoded; 415 h265_refused with webrtc.h265 = refuse", tag="webrtc", body=sdp,
              body_type="application/sdp", response=sdp, content_type="application/sdp", status=201)
    api.route("PATCH", "/api/whep/{camera_id}/{session}", whep_patch, summary="WHEP trickle ICE candidates",
              tag="webrtc", body=sdp, body_type="application/trickle-ice-sdpfrag", status=204)
    api.route("GET", "/api/whep/{camera_id}/{session}", whep_status, summary="A WHEP session's state, or why it "
              "ended (refused codec, failed transcode, grant ended, not connected)", tag="webrtc",
              response={"type": "object"})
    api.route("DELETE", "/api/whep/{camera_id}/{session}", whep_delete, summary="End a WHEP session", tag="webrtc")
    api.route("GET", "/api/whep/{camera_id}", whep_stats, summary="WebRTC viewers of a camera and what was sent",
              tag="webrtc", response={"type": "object"})
    api.route("GET", "/wall", wall_redirect, summary="Video wall (redirect)", tag="wall", response=None)
    api.route("GET", "/wall/{tail:.*}", wall_file, summary="Video wall page and its static files", tag="wall",
              response={"type": "string"}, content_type="text/html")
    gw.links.append(("Video wall", "{base}/wall/?token={token}"))
