"""Multi-packet answers (Catalog, RecordInfo) and single ones (DeviceInfo, DeviceStatus),
correlated by (DeviceID, CmdType, SN) — never by Call-ID (R1).

Catalog packets carry the same SN and ``SumNum``; items are deduplicated by DeviceID (devices
resend, split, or send one item per packet), collection ends at SumNum unique items or a timeout
that returns what arrived, flagged incomplete.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from adapters.base import Channel

from .manscdp import Manscdp, Node

LISTS = {"catalog": "devicelist", "recordinfo": "recordlist"}
PTZ_TYPES = {"1": "dome", "2": "hemisphere", "3": "fixed", "4": "remote-bullet"}


@dataclass(slots=True)
class Answer:
    first: Manscdp | None = None
    items: dict[str, Node] = field(default_factory=dict)
    total: int | None = None
    complete: bool = False
    packets: int = 0


class Collector:
    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, int], tuple[Answer, asyncio.Event]] = {}

    def expect(self, device_id: str, cmd: str, sn: int) -> tuple[str, str, int]:
        key = (device_id, cmd.lower(), sn)
        self._waiting[key] = (Answer(), asyncio.Event())
        return key

    async def wait(self, key: tuple[str, str, int], timeout: float) -> Answer:
        answer, done = self._waiting[key]
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

    def feed(self, msg: Manscdp) -> bool:
        """Take one Response packet; False when nobody waits for it."""
        slot = self._waiting.get((msg.device_id, msg.cmd.lower(), msg.sn))
        if slot is None:
            return False
        answer, done = slot
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


def channel_from_item(item: Node, device_id: str, adapter: str) -> Channel:
    """A Catalog item → the registry's channel record (ID, name, PTZ type, civil code, parent)."""
    ptz_type = item.get("info/ptztype") or item.get("ptztype")
    status = item.get("status").upper()
    return Channel(
        id=item.get("deviceid"),
        name=item.get("name") or item.get("deviceid"),
        adapter=adapter,
        online=status in ("ON", "ONLINE", "OK", ""),
        ptz=ptz_type in ("1", "2", "4"),
        civil_code=item.get("civilcode") or None,
        parent=item.get("parentid") or device_id,
        manufacturer=item.get("manufacturer") or None,
        model=item.get("model") or None,
        extra={"device": device_id, "ptz_type": PTZ_TYPES.get(ptz_type, ""), "address": item.get("address"),
               "business_group": item.get("businessgroupid"), "parental": item.get("parental")},
    )


def is_channel(item: Node) -> bool:
    """A video channel (types 131/132 and up to 199 as WVP counts them), not an org node."""
    dev = item.get("deviceid")
    return len(dev) == 20 and dev.isdigit() and 131 <= int(dev[10:13]) <= 199
