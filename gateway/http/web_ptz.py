"""``POST /api/cameras/{id}/ptz``: pan/tilt/zoom, focus/iris and presets for any adapter with PTZ.

The policy gate decides first (Action.PTZ on the camera's resource); the owning adapter executes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from adapters.base import NotSupported, PtzCommand
from gateway.policy import Action
from gateway.policy.access import http_access

from .api import HttpError, json_response
from .server import gateway_of

if TYPE_CHECKING:
    from gateway.app import Gateway

AXES = ("pan", "tilt", "zoom", "focus", "iris")
PTZ_SCHEMA = {
    "type": "object",
    "properties": {
        **{a: {"type": "number", "minimum": -1, "maximum": 1, "description": "speed; 0 stops"} for a in AXES},
        "preset": {"type": "integer", "minimum": 1, "maximum": 255},
        "preset_action": {"type": "string", "enum": ["goto", "set", "delete"]},
    },
}


def parse_command(data: object) -> PtzCommand:
    if not isinstance(data, dict):
        raise HttpError(400, "bad_request", "expected a JSON object")
    unknown = set(data) - set(AXES) - {"preset", "preset_action"}
    if unknown:
        name = min(unknown)
        raise HttpError(400, "bad_request", f"unknown field {name!r}", field=name)
    speeds = {}
    for axis in AXES:
        value = data.get(axis, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not -1 <= value <= 1:
            raise HttpError(400, "bad_request", f"{axis}: a number in -1..1", field=axis)
        speeds[axis] = float(value)
    preset, action = data.get("preset"), data.get("preset_action")
    if preset is not None and (isinstance(preset, bool) or not isinstance(preset, int) or not 1 <= preset <= 255):
        raise HttpError(400, "bad_request", "preset: an integer in 1..255", field="preset")
    if action is not None and action not in ("goto", "set", "delete"):
        raise HttpError(400, "bad_request", "preset_action: goto, set or delete", field="preset_action")
    if action is not None and preset is None:
        raise HttpError(400, "bad_request", "preset_action needs preset", field="preset")
    return PtzCommand(**speeds, preset=preset, preset_action=action or ("goto" if preset is not None else None))


async def ptz(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    cid = request.match_info["id"]
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HttpError(400, "bad_request", "body is not JSON") from None
    command = parse_command(data)
    decision = await gw.policy.authorize(http_access(request, Action.PTZ, gw.camera_resource(cid),
                                                     detail={"command": "stop" if command.is_stop else "move"}))
    if cid not in gw.registry.channels:
        raise HttpError(404, "not_found", f"no camera {cid!r}")
    if not decision:
        raise HttpError(403, "forbidden", decision.reason)
    try:
        await gw.registry.adapter_for(cid).ptz(cid, command)
    except NotSupported as exc:
        raise HttpError(501, "not_supported", str(exc)) from None
    except (TimeoutError, ConnectionError) as exc:
        raise HttpError(502, "device_unreachable",
                        f"the camera did not take the command: {type(exc).__name__}") from None
    return json_response({"ok": True, "stop": command.is_stop})


def setup(gw: Gateway) -> None:
    gw.api.route("POST", "/api/cameras/{id}/ptz", ptz, summary="Pan/tilt/zoom, focus/iris or a preset",
                 tag="cameras", body=PTZ_SCHEMA, response={"type": "object"})
