"""WHEP (WebRTC-HTTP Egress Protocol) sessions: ``POST`` offer → ``201`` answer + ``Location``,
``PATCH`` trickle candidates, ``DELETE`` ends. The policy gate decides before any media (R2)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
import logging
import secrets
from urllib.parse import quote
from typing import TYPE_CHECKING

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from gateway.http import HttpError, json_response
from gateway.http.server import gateway_of, subject_of
from gateway.media import H264, H265, stream_key
from gateway.policy import Action, Decision, http_access
from gateway.policy.sessions import VideoSession

from . import audio, compat
from .config import WebRtcConfig
from .fanout import CameraFanout
from .viewer import Viewer

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)


ENDED_KEPT = 1024  # ended sessions whose reason stays readable at their Location
MIME_CODECS = {"video/h264": H264, compat.H265_MIME.lower(): H265}


def preferences(h265: bool) -> list:
    """H.264 packetization-mode 1, and H.265 first when the browser offered it: the answer can then
    never pick VP8 (the camera's own payloads, no transcoding). Must be set before the offer is
    applied, or aiortc ignores it."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264" and c.parameters.get("packetization-mode") == "1"]
    return [c for c in codecs if h265 and c.mimeType.lower() == compat.H265_MIME.lower()] + h264


def payload_types(transceiver) -> dict[str, int]:  # noqa: ANN001 - RTCRtpTransceiver
    """Codec → the payload type the answer gave it (the first of each, in preference order)."""
    out: dict[str, int] = {}
    for codec in compat.negotiated(transceiver):
        name = MIME_CODECS.get(codec.mimeType.lower())
        if name is not None:
            out.setdefault(name, codec.payloadType)
    return out


class Session:
    def __init__(self, sid: str, camera_id: str, pc: RTCPeerConnection, viewer: Viewer, subject_id: str,
                 fan: CameraFanout) -> None:
        self.id, self.camera_id, self.pc, self.viewer, self.subject_id = sid, camera_id, pc, viewer, subject_id
        self.fan = fan
        self.video: VideoSession | None = None  # the gate's session record (closed when its grant ends)

    def video_mode(self, source: str | None) -> str | None:
        """What this viewer gets of a ``source`` codec: ``h264``, ``h265`` (the camera's own
        payloads) or ``h264; transcoded-from=h265``; None while the source's codec is unknown."""
        if source is None:
            return None
        if self.fan.watermark is not None:
            return f"h264; watermarked-from={source}"
        return source if self.viewer.accepts(source) else f"h264; transcoded-from={source}"


class WhepEgress:
    def __init__(self, gw: Gateway, cfg: WebRtcConfig) -> None:
        self.gw, self.cfg = gw, cfg
        self.sessions: dict[str, Session] = {}
        self.fanouts: dict[str, CameraFanout] = {}
        self.ended: OrderedDict[str, dict] = OrderedDict()  # sid -> why it ended (and whose it was)
        self._tasks: set[asyncio.Task] = set()

    def fanout(self, camera_id: str) -> CameraFanout:
        fan = self.fanouts.get(camera_id)
        if fan is None:
            fan = self.fanouts[camera_id] = CameraFanout(self.gw, camera_id, self.cfg, on_refuse=self._refused)
        return fan

    def source_audio(self, camera_id: str) -> str | None:
        """The camera's audio codec as last seen (None: no audio seen yet)."""
        fan = self.fanouts.get(camera_id)
        stream = self.gw.hub.streams.get(stream_key(camera_id))
        return (fan.audio_codec if fan else None) or (stream.audio_codec if stream else None)

    def source_codec(self, camera_id: str) -> str | None:
        """The camera's codec as last seen: its fan-out's or stream's last unit, else what the
        adapter reported for the channel (None: not known yet)."""
        fan = self.fanouts.get(camera_id)
        stream = self.gw.hub.streams.get(stream_key(camera_id))
        channel = self.gw.registry.channels.get(camera_id)
        return (fan.codec if fan else None) or (stream.codec if stream else None) or \
            (channel.codec if channel else None)

    def _refused(self, viewer: Viewer, code: str, message: str) -> None:
        self._spawn(self.close(viewer.session, error=code, message=message))

    def _rtc_config(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=[RTCIceServer(u) for u in self.cfg.stun_servers])

    async def open(self, camera_id: str, offer: str, decision: Decision) -> Session:
        """A viewer under ``decision``; a decision with a watermark obligation gets a fan-out of its
        own whose pictures carry that text (R13)."""
        watermark = decision.obligations.get("watermark") if "watermark" in decision.flags else None
        try:
            h265 = watermark is None and compat.offers_h265(offer)  # a watermark is always re-encoded
        except Exception:
            h265 = False  # aiortc below says what is wrong with this offer
        if not h265 and self.cfg.h265 == "refuse" and self.source_codec(camera_id) == H265:
            self.gw.metrics.inc("vsgw_webrtc_rejected_total", reason="h265_refused")
            message = (f"camera {camera_id} sends H.265, which this browser did not offer, and the gateway "
                       "does not transcode it (webrtc.h265 = refuse)")
            raise HttpError(415, "h265_refused", message, headers={"X-Vsgw-Reason": "h265_refused"})
        pc = RTCPeerConnection(self._rtc_config())
        sid = secrets.token_urlsafe(12)
        try:
            transceiver = pc.addTransceiver("video", direction="sendonly")
            transceiver.setCodecPreferences(preferences(h265))
            sound = None
            if watermark is None and audio.offered_g711(offer):  # the camera's G.711 as it is
                sound = pc.addTransceiver("audio", direction="sendonly")
                sound.setCodecPreferences(audio.preferences(self.source_audio(camera_id)))
            fan = self.fanout(camera_id) if watermark is None else \
                CameraFanout(self.gw, camera_id, self.cfg, watermark=str(watermark), on_refuse=self._refused)
            viewer = Viewer(sid, transceiver.sender, self.cfg, fan.on_keyframe_request, fan.on_ready, cname=sid)
            if sound is not None:
                viewer.audio = audio.AudioOut(sound.sender, cname=sid)
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            if sound is not None:
                viewer.audio.payload_types = audio.payload_types(sound)  # type: ignore[union-attr]
            viewer.payload_types = payload_types(transceiver)
            if H264 not in viewer.payload_types:
                raise HttpError(400, "no_h264", "the offer has no H.264 (packetization-mode=1) video")
            compat.answer_h265_as_offered(transceiver, offer)
            viewer.payload_types = payload_types(transceiver)
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
        session.video = await self.gw.sessions.start(
            decision, "live", lambda reason: self._spawn(self.close(sid, error="session_ended", message=reason)))

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(sid)

        if viewer.refused is not None:  # the codec became known while answering: refuse now, not after 201
            code, message = viewer.refused
            await self.close(sid, error=code, message=message)
            raise HttpError(415, code, message, headers={"X-Vsgw-Reason": code})
        self._spawn(self._expire_unconnected(sid))
        self.gw.metrics.inc("vsgw_webrtc_sessions_total", camera=camera_id)
        return session

    async def _expire_unconnected(self, sid: str) -> None:
        await asyncio.sleep(self.cfg.connect_timeout)
        session = self.sessions.get(sid)
        if session is not None and not session.viewer.ready.is_set():
            await self.close(sid, error="not_connected", message="ICE/DTLS did not connect in time")

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, sid: str, *, error: str | None = None, message: str | None = None) -> bool:
        """Ends a session; with ``error`` the reason stays readable at its Location (GET)."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return False
        if error is not None:
            self.ended[sid] = {"camera_id": session.camera_id, "subject": session.subject_id,
                               "error": error, "message": message or error}
            while len(self.ended) > ENDED_KEPT:
                self.ended.popitem(last=False)
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
               "Access-Control-Expose-Headers": "Location, X-Vsgw-Watermark, X-Vsgw-Video"}
    video = session.video_mode(egress.source_codec(cid))
    if video is not None:
        headers["X-Vsgw-Video"] = video
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


async def whep_status(request: web.Request) -> web.Response:
    """A session's state, and once it ended for a reason (refused codec, failed transcode, grant
    ended, never connected), that reason: a tile that shows no picture can say why."""
    egress = request.app[EGRESS]
    sid, cid = request.match_info["session"], request.match_info["camera_id"]
    ended = egress.ended.get(sid)
    if sid not in egress.sessions and ended is not None and ended["camera_id"] == cid:
        if ended["subject"] != subject_of(request).id:
            raise HttpError(403, "forbidden", "the session belongs to someone else")
        return json_response({"state": "ended", "error": ended["error"], "message": ended["message"]})
    session = _session(request)
    return json_response({"state": "live" if session.viewer.ready.is_set() else "connecting",
                          "video": session.video_mode(egress.source_codec(cid)),
                          "frames": session.viewer.frames})


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
    return json_response({"camera_id": cid, "frames": fan.frames if fan else 0, "viewers": viewers,
                          "codec": fan.codec if fan else None, "transcoding": bool(fan and fan.transcoding)})
