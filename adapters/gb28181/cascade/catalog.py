"""The catalog a superior gets (R2, R4): exactly the cameras its subject may LIST, narrowed by the
share list, with the organisation nodes above them, split into packets with SumNum and Num.

A camera item carries only what a LIST projection of it shows (ID, name, civil code, parent, status,
whether it has PTZ) — never the installation address, coordinates, IP address, port, manufacturer or
model (R4), whatever the source device reported. Organisation nodes are the camera's civil-code
region chain (2/4/6/8 digits) and, for GB/T 28181 channels, the business groups (215), virtual
organisations (216) and recorder/encoder devices above it in its device's own catalog; a node is
sent only when a shared camera is below it. A camera without a parent hangs under our platform ID.
Channels whose ID is not a 20-digit camera ID cannot be addressed by a superior and are left out
(counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.base import Channel
from gateway.policy import Action, subject_access

from .. import manscdp
from ..catalog import STREAMABLE, TreeNode, classify
from .config import Superior, gb_id

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.policy import Subject

Fields = list[tuple[str, object]]
GROUP_KINDS = frozenset({"business_group", "virtual_org"})
DEVICE_KINDS = frozenset({"dvr", "nvr", "encoder", "video_server", "system"})
NUM_SLACK = 16  # the Num attribute's digits grow as a packet fills


@dataclass(slots=True)
class Shared:
    cameras: list[Channel] = field(default_factory=list)
    refused: int = 0  # the gate does not let the superior list them
    unshared: int = 0  # the gate would, the share list does not
    unaddressable: int = 0  # not a GB/T 28181 camera ID


async def shared(gw: Gateway, sup: Superior, subject: Subject) -> Shared:
    out = Shared()
    for ch in sorted(gw.registry.channels.values(), key=lambda c: c.id):
        decision = await gw.policy.authorize(subject_access(subject, Action.LIST, gw.camera_resource(ch.id), "sip",
                                                            quiet=True))
        if not decision:
            out.refused += 1
        elif not sup.shares(ch.id):
            out.unshared += 1
        elif not gb_id(ch.id) or classify(ch.id) not in STREAMABLE:
            out.unaddressable += 1
        else:
            out.cameras.append(ch)
    return out


@dataclass(slots=True)
class Org:
    """Where the organisation above a channel comes from: its GB/T 28181 device's catalog tree."""

    tree: Callable[[str], list[TreeNode]] = lambda device_id: []
    device_name: Callable[[str], str | None] = lambda device_id: None

    @classmethod
    def of(cls, gw: Gateway) -> Org:
        adapter: Any = getattr(gw, "gb28181", None)
        if adapter is None:
            return cls()

        def name(device_id: str) -> str | None:
            dev = adapter.server.devices.get(device_id)
            return (dev.info.get("devicename") or None) if dev is not None else None

        return cls(adapter.tree, name)


def items(sup: Superior, cameras: list[Channel], org: Org) -> list[Fields]:
    """Organisation nodes (parents first), then the cameras."""
    nodes: dict[str, Fields] = {}
    out: list[Fields] = []
    trees: dict[str, dict[str, TreeNode]] = {}
    for ch in cameras:
        civil = ch.civil_code if _civil(ch.civil_code) else sup.local_id[:6]
        _regions(nodes, civil)
        device = str(ch.extra.get("device") or "")
        if device and device not in trees:
            trees[device] = {n.id: n for n in org.tree(device)}
        parent, group = _chain(nodes, sup, civil, ch.parent, trees.get(device, {}), org)
        item: Fields = [("DeviceID", ch.id), ("Name", ch.name or ch.id), ("CivilCode", civil), ("Parental", 0),
                        ("ParentID", parent), ("SafetyWay", 0), ("RegisterWay", 1), ("Secrecy", 0),
                        ("Status", "ON" if ch.online else "OFF")]
        if group:
            item.append(("BusinessGroupID", group))
        if not ch.ptz:
            item.append(("Info", [("PTZType", 3)]))  # fixed: the superior offers no PTZ
        out.append(item)
    return list(nodes.values()) + out


def _civil(code: str | None) -> bool:
    return bool(code) and code.isascii() and code.isdigit() and len(code) in (2, 4, 6, 8)


def _regions(nodes: dict[str, Fields], civil: str) -> None:
    parent = ""
    for n in range(2, len(civil) + 1, 2):
        code = civil[:n]
        if code not in nodes:
            node: Fields = [("DeviceID", code), ("Name", code), ("CivilCode", code), ("Parental", 1)]
            if parent:
                node.append(("ParentID", parent))
            nodes[code] = node
        parent = code


def _chain(nodes: dict[str, Fields], sup: Superior, civil: str, parent: str | None, tree: dict[str, TreeNode],
           org: Org) -> tuple[str, str | None]:
    """Add the organisation nodes above a camera (top first); returns its ParentID and business group."""
    chain: list[tuple[str, str, str | None]] = []  # (id, name, business group), nearest first
    seen: set[str] = set()
    while parent and parent not in seen and gb_id(parent):
        seen.add(parent)
        kind, node = classify(parent), tree.get(parent)
        if kind in GROUP_KINDS:
            group = parent if kind == "business_group" else (node.business_group_id if node else None)
            chain.append((parent, node.name if node else parent, group))
            parent = node.parent_id if node else None
        elif kind in DEVICE_KINDS:
            chain.append((parent, org.device_name(parent) or parent, None))
            break
        else:
            break
    above = sup.local_id
    group: str | None = None
    for node_id, name, node_group in reversed(chain):
        group = node_group or group
        if node_id not in nodes:
            fields: Fields = [("DeviceID", node_id), ("Name", name), ("CivilCode", civil), ("Parental", 1),
                              ("ParentID", above)]
            if group and group != node_id:
                fields.append(("BusinessGroupID", group))
            nodes[node_id] = fields
        above = node_id
    return above, group


def packets(sup: Superior, cmd: str, sn: int, device_id: str, entries: list[Fields], list_tag: str,
            head: Fields | None = None) -> list[bytes]:
    """Response bodies, each with SumNum (all entries) and ``<list_tag Num=n>``: at most
    ``catalog_items_per_packet`` entries and ``max_body_bytes`` bytes (an entry larger than that goes alone)."""
    enc, total = sup.charset, len(entries)

    def body(chunk: list[Fields]) -> bytes:
        fields = [*(head or []), ("SumNum", total), (f'{list_tag} Num="{len(chunk)}"', [("Item", e) for e in chunk])]
        return manscdp.build("Response", cmd, sn, device_id, fields, encoding=enc)

    bare = len(manscdp.build("Response", cmd, sn, device_id, [], encoding=enc))
    limit = sup.max_body_bytes - NUM_SLACK
    out: list[bytes] = []
    chunk: list[Fields] = []
    size = len(body([]))
    for entry in entries:
        grows = len(manscdp.build("Response", cmd, sn, device_id, [("Item", entry)], encoding=enc)) - bare
        if chunk and (len(chunk) >= sup.catalog_items_per_packet or size + grows > limit):
            out.append(body(chunk))
            chunk, size = [], len(body([]))
        chunk.append(entry)
        size += grows
    if chunk or not out:
        out.append(body(chunk))
    return out
