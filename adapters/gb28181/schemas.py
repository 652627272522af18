"""OpenAPI schemas of the GB/T 28181 device-management routes."""

from __future__ import annotations

from .settings import TRANSPORTS

_STR = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_NUM = {"type": ["number", "null"]}
SETTINGS = {
    "type": "object",
    "properties": {
        "media_transport": {"type": ["string", "null"], "enum": [*TRANSPORTS, None]},
        "charset": {"type": ["string", "null"], "enum": ["GB18030", "UTF-8", None]},
        "keepalive_interval": {**_NUM, "minimum": 1, "maximum": 86400, "description": "seconds"},
        "keepalive_timeout": {**_NUM, "description": "seconds after the last keepalive the device is offline "
                                                      "(default interval x keepalive_misses)"},
        "time_zone": {**_STR, "description": "IANA zone of the device's local time, e.g. Asia/Shanghai"},
    },
    "additionalProperties": False,
}
SETTINGS_BODY = {**SETTINGS, "description": "fields to change; null returns a field to the configuration"}
DEVICE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "name": _STR, "manufacturer": _STR, "model": _STR, "firmware": _STR,
        "online": {"type": "boolean"}, "registered": {"type": "boolean"},
        "transport": {"type": "string", "enum": ["udp", "tcp"]}, "gb_version": _STR,
        "expires": {"type": "integer"}, "registered_at": _TIME, "expires_at": _TIME, "last_keepalive": _TIME,
        "channel_count": {"type": "integer"},
        "settings": {**SETTINGS, "description": "what the API set for this device (null: not set)"},
        "effective": {"type": "object", "description": "the settings in force (API over [[sip.devices]] over [sip])"},
        "remote": {"type": "object", "description": "address and Contact; only for callers who may manage the device",
                   "properties": {"host": {"type": "string"}, "port": {"type": "integer"},
                                  "contact": {"type": "string"}}},
    },
}
DEVICE_DETAIL = {
    "allOf": [{"$ref": "#/components/schemas/GbDevice"}, {"type": "object", "properties": {
        "channels": {"type": "array", "items": {"$ref": "#/components/schemas/Camera"}},
        "tree": {"type": "array", "description": "every catalog item with its kind (region, business_group, "
                                                 "virtual_org, camera, alarm_input, ...) and parent",
                 "items": {"type": "object"}}}}],
}
STATUS = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "result": _STR, "online": _STR, "status": _STR, "record": _STR,
                   "encode": _STR, "device_time": _TIME, "alarms": {"type": "array", "items": {"type": "object"}}},
}
SYNC = {
    "type": "object",
    "properties": {name: {"type": ["integer", "null"]} for name in
                   ("items", "sum_num", "packets", "channels", "added", "removed", "conflicts")}
    | {"complete": {"type": "boolean"}},
}
SETTINGS_RESULT = {"type": "object", "properties": {"id": {"type": "string"}, "settings": SETTINGS,
                                                    "effective": {"type": "object"}}}
RECORDS = {
    "type": "object",
    "properties": {
        "channel_id": {"type": "string"}, "start": _TIME, "end": _TIME, "type": {"type": "string"},
        "complete": {"type": "boolean"}, "sum_num": {"type": ["integer", "null"]},
        "records": {"type": "array", "items": {"type": "object", "properties": {
            "start": _TIME, "end": _TIME, "type": _STR, "name": _STR, "file_path": _STR,
            "file_size": {"type": ["integer", "null"]}}}},
    },
}
