"""Multi-packet answers (Catalog, RecordInfo) and single ones (DeviceInfo, DeviceStatus),
correlated by (DeviceID, CmdType, SN) — never by Call-ID (R1).

Catalog packets carry the same SN and ``SumNum``; items are deduplicated by DeviceID (devices
resend, split, or send one item per packet), collection ends at SumNum unique items or a timeout
that returns what arrived, flagged incomplete.

A catalog mixes cameras with the organisation tree (civil-code regions, business groups, virtual
organisations) and other peripherals (alarm inputs/outputs, NVRs…). :func:`classify` names each
item's ``kind`` from its ID (GB/T 28181 Annex D: digits 11–13 are the type code; IDs of at most 8
digits are civil codes). Only cameras become registry channels; every item is kept as a
:class:`TreeNode` for the organisation tree.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Channel

from .manscdp import Manscdp, Node

LISTS = {"catalog": "devicelist", "recordinfo": "recordlist"}
# Info/PTZType (2016: 1–4; 2022 adds 5–7). Only a fixed bullet is known to have no PTZ; a missing or
# other value means "try": the device refuses a command it cannot carry out.
PTZ_TYPES = {"1": "dome", "2": "hemisphere", "3": "fixed", "4": "remote-bullet", "5": "remote-hemisphere",
             "6": "multi-sensor-panorama", "7": "multi-sensor-split"}
NO_PTZ = frozenset({"fixed"})
TYPE_KINDS = {  # digits 11–13 of a 20-digit ID → kind
    "111": "dvr", "112": "video_server", "113": "encoder", "114": "decoder", "115": "video_matrix",
    "116": "audio_matrix", "117": "alarm_controller", "118": "nvr",
    "131": "camera", "132": "camera", "133": "display", "134": "alarm_input", "135": "alarm_output",
    "136": "audio_input", "137": "audio_output", "138": "mobile", "139": "peripheral",
    "200": "system", "215": "business_group", "216": "virtual_org",
}
STREAMABLE = frozenset({"camera", "mobile"})  # kinds that carry video: the registry's channels


@dataclass(slots=True)
class Answer:
    first: Manscdp | None = None
    items: dict[str, Node] = field(default_factory=dict)
    total: int | None = None
    complete: bool = False
    packets: int = 0


class Collector:
    """Query answers matched by (DeviceID, CmdType, SN), and taken only from the device that was
    asked: another registered device cannot answer in its name (R18)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, int], tuple[Answer, asyncio.Event, str | None]] = {}

    def expect(self, device_id: str, cmd: str, sn: int, asked: str | None = None) -> tuple[str, str, int]:
        """``device_id`` is the body's target (a device or one of its channels); ``asked`` the
        registered device whose transport must carry the answer (default: ``device_id``)."""
        key = (device_id, cmd.lower(), sn)
        self._waiting[key] = (Answer(), asyncio.Event(), asked or device_id)
        return key

    async def wait(self, key: tuple[str, str, int], timeout: float) -> Answer:
        answer, done, _ = self._waiting[key]
        try:
            async with asyncio.timeout(timeout):
                await done.wait()
        except TimeoutError:
            pass
        finally:
            self._waiting.pop(key, None)
        return answer

    def cancel(self, key: tuple[str, str, int]) -> None:
        self._waiting.pop(key, None)

    def feed(self, msg: Manscdp, sender: str | None = None) -> bool:
        """Take one Response packet from the registered device ``sender``; False when nobody
        waits for it from that device."""
        slot = self._waiting.get((msg.device_id, msg.cmd.lower(), msg.sn))
        if slot is None or sender is not None and slot[2] != sender:
            return False
        answer, done, _ = slot
        answer.packets += 1
        answer.first = answer.first or msg
        list_tag = LISTS.get(msg.cmd.lower())
        if list_tag is None:
            answer.complete = True
            done.set()
            return True
        answer.total = msg.root.int("sumnum", answer.total or 0)
        lst = msg.root.find(list_tag)
        for i, item in enumerate(lst.findall("item") if lst is not None else []):
            key = item.get("deviceid") if list_tag == "devicelist" else _record_key(item, i)
            if key:
                answer.items[key] = item
        if len(answer.items) >= (answer.total or 0):
            answer.complete = True
            done.set()
        return True


def _record_key(item: Node, i: int) -> str:
    return "|".join((item.get("deviceid"), item.get("starttime"), item.get("endtime"), item.get("filepath"))) or str(i)


@dataclass(slots=True)
class TreeNode:
    """One catalog item as the device placed it: kind, parent and business group kept as sent."""

    id: str
    name: str
    kind: str
    parent_id: str | None  # the last hop of ParentID (2016 devices send a '/'-separated path)
    business_group_id: str | None
    civil_code: str | None
    parental: bool
    device: str
    extra: dict[str, Any] = field(default_factory=dict)


def classify(item_id: str) -> str:
    """The item's kind from its ID: ``region`` for civil codes, a :data:`TYPE_KINDS` value, or
    ``other`` (a 20-digit ID of an unknown type) / ``unknown`` (not a GB ID at all)."""
    if item_id.isdigit() and len(item_id) in (2, 4, 6, 8):
        return "region"
    if item_id.isdigit() and len(item_id) == 20:
        return TYPE_KINDS.get(item_id[10:13], "other")
    return "unknown"


def tree_node(item: Node, device_id: str) -> TreeNode:
    item_id = item.get("deviceid")
    path = [hop for hop in item.get("parentid").split("/") if hop]
    return TreeNode(
        id=item_id, name=item.get("name") or item_id, kind=classify(item_id),
        parent_id=path[-1] if path else None, business_group_id=item.get("businessgroupid") or None,
        civil_code=item.get("civilcode") or None, parental=item.get("parental") == "1", device=device_id,
        extra={"parent_path": item.get("parentid"), "type_code": item_id[10:13] if len(item_id) == 20 else "",
               "status": item.get("status")})


def is_streamable(item: Node) -> bool:
    return classify(item.get("deviceid")) in STREAMABLE


def channel_from_item(item: Node, device_id: str, adapter: str) -> Channel:
    """A camera's catalog item → the registry's channel record (ID, name, PTZ, civil code, parent)."""
    ptz_type = PTZ_TYPES.get(item.get("info/ptztype") or item.get("ptztype"), "")
    status = item.get("status").upper()
    node = tree_node(item, device_id)
    return Channel(
        id=node.id,
        name=node.name,
        adapter=adapter,
        online=status in ("ON", "ONLINE", "OK", ""),
        ptz=ptz_type not in NO_PTZ,
        civil_code=node.civil_code,
        parent=node.parent_id or device_id,
        manufacturer=item.get("manufacturer") or None,
        model=item.get("model") or None,
        extra={"device": device_id, "kind": node.kind, "ptz_type": ptz_type, "address": item.get("address"),
               "business_group": node.business_group_id, "parental": item.get("parental")},
    )
