"""Core routes: health, metrics, OpenAPI, live cameras with stream stats, event stream (SSE)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
import json
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.policy import Action, Resource
from gateway.policy.access import emergency_view, http_access, subject_access

from .api import HttpError, json_response, public
from .server import gateway_of, subject_of

if TYPE_CHECKING:
    from adapters.base import Channel
    from gateway.app import Gateway

CAMERA_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "adapter": {"type": "string"},
        "online": {"type": "boolean"},
        "ptz": {"type": "boolean"},
        "codec": {"type": ["string", "null"]},
        "civil_code": {"type": ["string", "null"]},
        "parent": {"type": ["string", "null"]},
        "stream": {"type": ["object", "null"], "description": "live stream statistics while ingest runs"},
    },
}


def camera_json(gw: Gateway, channel: Channel, with_stats: bool = False) -> dict:
    out = {
        "id": channel.id,
        "name": channel.name,
        "adapter": channel.adapter,
        "online": channel.online,
        "ptz": channel.ptz,
        "codec": channel.codec,
        "civil_code": channel.civil_code,
        "parent": channel.parent,
    }
    if with_stats:
        stream = gw.hub.streams.get(channel.id)
        out["stream"] = asdict(stream.stats()) if stream is not None else None
    return out


def camera_resource(gw: Gateway, channel_id: str) -> Resource:
    """The policy resource for a channel; the registry issue enriches it with unit and level."""
    return gw.camera_resource(channel_id)


@public
async def healthz(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    return json_response({"status": "ok", "node": gw.node, "version": gw.version})


async def metrics(request: web.Request) -> web.Response:
    """Stream keys, rates and counts are metadata about cameras: only operators of the platform read them."""
    decision = await gateway_of(request).policy.authorize(http_access(request, Action.LIST, Resource("metrics", "*")))
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    return web.Response(text=gateway_of(request).metrics.render(), content_type="text/plain", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    return json_response(gateway_of(request).api.doc)


async def list_cameras(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    text = request.query.get("q", "").lower()
    online = request.query.get("online")
    out = []
    for ch in sorted(gw.registry.channels.values(), key=lambda c: c.id):
        if text and text not in ch.name.lower() and text not in ch.id.lower():
            continue
        if online is not None and ch.online != (online.lower() in ("1", "true", "yes")):
            continue
        if not (await gw.policy.authorize(http_access(request, Action.LIST, camera_resource(gw, ch.id), quiet=True))):
            continue
        out.append(camera_json(gw, ch))
    return json_response({"cameras": out})


async def get_camera(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    cid = request.match_info["id"]
    channel = gw.registry.channels.get(cid)
    decision = await gw.policy.authorize(http_access(request, Action.LIST, camera_resource(gw, cid)))
    if channel is None:
        raise HttpError(404, "not_found", f"no camera {cid!r}")
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    return json_response(camera_json(gw, channel, with_stats=True))


EVENT_STREAMS = web.AppKey("event_streams", set)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events of bus events; ``topics`` is a comma list of prefixes. Events about a
    camera pass the same gate as listing it."""
    gw, subject = gateway_of(request), subject_of(request)
    prefixes = tuple(p for p in request.query.get("topics", "").split(",") if p)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    with gw.bus.subscribe(*prefixes, maxsize=256) as sub:  # before the headers: an open stream misses nothing
        request.app[EVENT_STREAMS].add(sub)
        try:
            await resp.prepare(request)
            await resp.write(b": connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(sub.get(), 15)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                except StopAsyncIteration:
                    break
                camera = event.camera()
                if camera and not await gw.policy.authorize(
                        subject_access(subject, Action.LIST, camera_resource(gw, camera), "events", quiet=True)):
                    continue  # a camera the caller may not list: not even its state or name
                fields = event.to_dict()
                if event.topic.startswith("emergency."):
                    fields = await emergency_view(gw, subject, fields, "events")
                data = json.dumps(fields, ensure_ascii=False, default=str)
                await resp.write(f"event: {event.topic}\ndata: {data}\n\n".encode())
        except ConnectionResetError:  # the client left: the normal end of an event stream
            pass
        finally:
            request.app[EVENT_STREAMS].discard(sub)
    return resp


async def _end_event_streams(app: web.Application) -> None:
    """On shutdown: end every open event stream now, not at its next 15 s keepalive."""
    for sub in list(app[EVENT_STREAMS]):
        sub.close()


def setup(gw: Gateway) -> None:
    gw.app[EVENT_STREAMS] = set()
    gw.app.on_shutdown.append(_end_event_streams)
    api = gw.api
    api.schema("Camera", CAMERA_SCHEMA)
    ref = {"$ref": "#/components/schemas/Camera"}
    api.route("GET", "/healthz", healthz, summary="Liveness", tag="system", response={"type": "object"})
    api.route("GET", "/metrics", metrics, summary="Prometheus metrics", tag="system",
              response={"type": "string"}, content_type="text/plain")
    api.route("GET", "/api/openapi.json", openapi, summary="This document", tag="system", response={"type": "object"})
    api.route("GET", "/api/cameras", list_cameras, summary="Live cameras the caller may see", tag="cameras",
              response={"type": "object", "properties": {"cameras": {"type": "array", "items": ref}}},
              query={"q": {"type": "string"}, "online": {"type": "boolean"}})
    api.route("GET", "/api/cameras/{id}", get_camera, summary="One camera with live stream statistics",
              tag="cameras", response=ref)
    api.route("GET", "/api/events", events, summary="Bus events as Server-Sent Events", tag="events",
              response={"type": "string"}, content_type="text/event-stream",
              query={"topics": {"type": "string", "description": "comma-separated topic prefixes"}})
