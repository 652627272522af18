"""WHEP (WebRTC-HTTP Egress Protocol) sessions: ``POST`` offer → ``201`` answer + ``Location``,
``PATCH`` trickle candidates, ``DELETE`` ends. The policy gate decides before any media (R2)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import quote
from typing import TYPE_CHECKING

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from gateway.http import HttpError, json_response
from gateway.http.server import gateway_of, subject_of
from gateway.policy import Action, Decision, http_access
from gateway.policy.sessions import VideoSession

from .config import WebRtcConfig
from .fanout import CameraFanout
from .viewer import Viewer

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)


def h264_preferences() -> list:
    """H.264 packetization-mode 1 only: the answer can then never pick VP8 (passthrough, no
    transcoding). Must be set before the offer is applied, or aiortc ignores it."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [c for c in codecs if c.mimeType.lower() == "video/h264" and c.parameters.get("packetization-mode") == "1"]


class Session:
    def __init__(self, sid: str, camera_id: str, pc: RTCPeerConnection, viewer: Viewer, subject_id: str,
                 fan: CameraFanout) -> None:
        self.id, self.camera_id, self.pc, self.viewer, self.subject_id = sid, camera_id, pc, viewer, subject_id
        self.fan = fan
        self.video: VideoSession | None = None  # the gate's session record (closed when its grant ends)


class WhepEgress:
    def __init__(self, gw: Gateway, cfg: WebRtcConfig) -> None:
        self.gw, self.cfg = gw, cfg
        self.sessions: dict[str, Session] = {}
        self.fanouts: dict[str, CameraFanout] = {}
        self._tasks: set[asyncio.Task] = set()

    def fanout(self, camera_id: str) -> CameraFanout:
        fan = self.fanouts.get(camera_id)
        if fan is None:
            fan = self.fanouts[camera_id] = CameraFanout(self.gw, camera_id, self.cfg)
        return fan

    def _rtc_config(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=[RTCIceServer(u) for u in self.cfg.stun_servers])

    async def open(self, camera_id: str, offer: str, decision: Decision) -> Session:
        """A viewer under ``decision``; a decision with a watermark obligation gets a fan-out of its
        own whose pictures carry that text (R13)."""
        pc = RTCPeerConnection(self._rtc_config())
        sid = secrets.token_urlsafe(12)
        watermark = decision.obligations.get("watermark") if "watermark" in decision.flags else None
        try:
            transceiver = pc.addTransceiver("video", direction="sendonly")
            transceiver.setCodecPreferences(h264_preferences())
            fan = self.fanout(camera_id) if watermark is None else \
                CameraFanout(self.gw, camera_id, self.cfg, watermark=str(watermark))
            viewer = Viewer(sid, transceiver.sender, self.cfg, fan.on_keyframe_request, fan.on_ready, cname=sid)
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            if not transceiver._codecs:
                raise HttpError(400, "no_h264", "the offer has no H.264 (packetization-mode=1) video")
            await pc.setLocalDescription(await pc.createAnswer())
        except HttpError:
            await pc.close()
            raise
        except Exception as exc:  # a malformed offer: refuse clearly, keep serving
            await pc.close()
            self.gw.metrics.inc("vsgw_webrtc_rejected_total", reason="offer")
            raise HttpError(400, "bad_offer", f"cannot use this SDP offer: {type(exc).__name__}") from None
        session = Session(sid, camera_id, pc, viewer, decision.request.subject.id, fan)  # type: ignore[union-attr]
        try:
            fan.add(viewer, decision)
        except Exception:
            await pc.close()
            raise
        self.sessions[sid] = session
        session.video = await self.gw.sessions.start(decision, "live", lambda reason: self._spawn(self.close(sid)))

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(sid)

        self._spawn(self._expire_unconnected(sid))
        self.gw.metrics.inc("vsgw_webrtc_sessions_total", camera=camera_id)
        return session

    async def _expire_unconnected(self, sid: str) -> None:
        await asyncio.sleep(self.cfg.connect_timeout)
        session = self.sessions.get(sid)
        if session is not None and not session.viewer.ready.is_set():
            await self.close(sid)

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, sid: str) -> bool:
        session = self.sessions.pop(sid, None)
        if session is None:
            return False
        session.fan.remove(session.viewer)
        if session.fan.watermark is not None:
            await session.fan.close()
        await session.pc.close()
        if session.video is not None:
            await self.gw.sessions.end(session.video)
        return True

    async def stop(self) -> None:
        for sid in list(self.sessions):
            await self.close(sid)
        for fan in self.fanouts.values():
            await fan.close()
        for task in list(self._tasks):
            task.cancel()


# -- HTTP ------------------------------------------------------------------------------------
EGRESS = web.AppKey("webrtc", WhepEgress)


async def whep_offer(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    egress = request.app[EGRESS]
    cid = request.match_info["camera_id"]
    if cid not in gw.registry.channels:
        raise HttpError(404, "not_found", f"no camera {cid!r}")
    subject = subject_of(request)
    decision = await gw.policy.authorize(http_access(request, Action.VIEW_LIVE, gw.camera_resource(cid),
                                                     egress="whep"))
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    if request.content_type != "application/sdp":
        gw.metrics.inc("vsgw_webrtc_rejected_total", reason="content_type")
        raise HttpError(415, "unsupported_media_type", "send the SDP offer as application/sdp")
    try:
        offer = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        gw.metrics.inc("vsgw_webrtc_rejected_total", reason="offer_encoding")
        raise HttpError(400, "bad_offer", "the SDP offer is not UTF-8 text") from None
    if "m=video" not in offer:
        gw.metrics.inc("vsgw_webrtc_rejected_total", reason="offer")
        raise HttpError(400, "bad_offer", "the SDP offer has no video section")
    session = await egress.open(cid, offer, decision)
    headers = {"Location": f"/api/whep/{cid}/{session.id}", "ETag": f'"{session.id}"',
               "Access-Control-Expose-Headers": "Location, X-Vsgw-Watermark"}
    if "watermark" in decision.flags:
        text = str(decision.obligations.get("watermark") or subject.name or subject.id)
        headers["X-Vsgw-Watermark"] = quote(text)  # percent-encoded UTF-8: headers are Latin-1
    return web.Response(status=201, text=session.pc.localDescription.sdp, content_type="application/sdp",
                        headers=headers)


def _session(request: web.Request) -> Session:
    egress = request.app[EGRESS]
    session = egress.sessions.get(request.match_info["session"])
    if session is None or session.camera_id != request.match_info["camera_id"]:
        raise HttpError(404, "not_found", "no such WHEP session")
    if session.subject_id != subject_of(request).id:
        raise HttpError(403, "forbidden", "the session belongs to someone else")
    return session


async def whep_delete(request: web.Request) -> web.Response:
    session = _session(request)
    await request.app[EGRESS].close(session.id)
    return web.Response(status=200)


async def whep_patch(request: web.Request) -> web.Response:
    """Trickle ICE (RFC 8840 fragment): remote candidates added to the session."""
    session = _session(request)
    if request.content_type != "application/trickle-ice-sdpfrag":
        raise HttpError(415, "unsupported_media_type", "send application/trickle-ice-sdpfrag")
    body = await request.text()
    transceiver = session.pc.getTransceivers()[0]
    added = 0
    for line in body.splitlines():
        if line.startswith("a=candidate:"):
            try:
                candidate = candidate_from_sdp(line[len("a=candidate:"):])
            except (ValueError, IndexError):
                request.app[EGRESS].gw.metrics.inc("vsgw_webrtc_rejected_total", reason="candidate")
                raise HttpError(400, "bad_candidate", "malformed a=candidate line") from None
            candidate.sdpMid = transceiver.mid
            await session.pc.addIceCandidate(candidate)
            added += 1
    return web.Response(status=204, headers={"X-Vsgw-Candidates": str(added)})


async def whep_stats(request: web.Request) -> web.Response:
    """Viewer statistics of a camera, for whoever may watch it live (they name its viewers' traffic)."""
    egress, gw = request.app[EGRESS], gateway_of(request)
    cid = request.match_info["camera_id"]
    decision = await gw.policy.authorize(http_access(request, Action.VIEW_LIVE, gw.camera_resource(cid),
                                                     egress="whep", detail={"operation": "stats"}))
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    fan = egress.fanouts.get(cid)
    viewers = [v.stats() for v in fan.viewers] if fan else []
    return json_response({"camera_id": cid, "frames": fan.frames if fan else 0, "viewers": viewers})
