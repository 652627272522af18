"""A GB/T 28181 device (IPC/NVR) simulator: the peer for tests, the demo and benchmarks (R1).

It registers with digest, keeps alive, answers Catalog/DeviceInfo/DeviceStatus/RecordInfo, takes
DeviceControl (answering RecordCmd/GuardCmd/AlarmCmd/HomePosition with a Response), PresetQuery,
ConfigDownload, alarm queries and SUBSCRIBE (NOTIFYing catalog changes, alarms and positions; see
:mod:`.simcontrol`) and MANSRTSP INFO (recorded in ``received`` for assertions), and on INVITE pushes
PS over RTP of the synthetic H.264 pattern. Quirk switches reproduce field devices: its own
``y=`` SSRC, one catalog item per packet, GBK or UTF-8 bodies, no keepalive, MediaStatus sent
from the channel's ID. A request the platform challenges (401) is sent again with a digest.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from . import digest, manscdp
from .manscdp import Manscdp
from .sdp import Sdp
from .sdp import parse as parse_sdp
from .sip import SipMessage, new_branch, new_call_id, new_tag, response
from .transport import Endpoint, Peer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Quirks:
    own_ssrc: bool = False  # answer INVITE with a different y= (Hikvision/Dahua platforms)
    no_ssrc: bool = False  # answer without y=
    split_catalog: bool = False  # one catalog item per MESSAGE, sent twice (dedupe)
    charset: str = "GB2312"  # "GB2312" (sent as GB18030 bytes) or "UTF-8"
    no_keepalive: bool = False
    channel_from: bool = False  # MediaStatus From: the channel ID, not the device's (Hikvision playback)
    no_control_response: bool = False  # take DeviceControl with 200 but never send its Response
    control_error: bool = False  # answer DeviceControl with Result ERROR
    refuse_subscribe: bool = False  # answer SUBSCRIBE 489 (Hikvision NVRs refusing catalog subscriptions)
    forget_subscriptions: bool = False  # answer every in-dialog refresh 481, as a device that lost its state
    position_by_message: bool = False  # send MobilePosition as MESSAGE rather than NOTIFY in the dialog


QUIRK_FLAGS = ("no_control_response", "control_error", "refuse_subscribe", "forget_subscriptions",
               "position_by_message")  # the ones ``vsgw gb-sim --quirk NAME`` sets


@dataclass(slots=True)
class SimConfig:
    server_host: str
    server_port: int
    device_id: str = "34020000001320000001"
    server_id: str = "34020000002000000001"
    password: str = "12345678"
    channels: int = 1
    transport: str = "udp"  # SIP transport: udp | tcp
    local_host: str = "127.0.0.1"
    expires: int = 3600
    keepalive_interval: float = 60.0
    name: str = "模拟摄像机"  # non-ASCII on purpose: exercises the charset path
    width: int = 320
    height: int = 240
    fps: int = 25
    playback_seconds: float = 2.0  # a playback/download streams this long, then MediaStatus 121
    honour_mansrtsp: bool = False  # playback/download: the INVITE range, obeying PAUSE/PLAY (simplayhead)
    audio: str | None = None  # "pcma" or "pcmu": a 1 kHz G.711 tone in the PS beside the pictures
    quirks: Quirks = field(default_factory=Quirks)

    @property
    def realm(self) -> str:
        return self.server_id[:10]

    def channel_ids(self) -> list[str]:
        base = self.device_id[:10] + "131" + self.device_id[13:16]
        return [f"{base}{i + 1:04d}" for i in range(self.channels)]


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.endpoint = Endpoint(self._handle)
        self.server = Peer(cfg.transport, (cfg.server_host, cfg.server_port))
        self.tag = new_tag()
        self.call_id = ""
        self._cseq = itertools.count(1)
        self._sn = itertools.count(1)
        self.registered = asyncio.Event()
        self.received: list[tuple[str, str, object]] = []  # (method, CmdType or first line, detail)
        self.changed = asyncio.Condition()
        self.sessions: dict[str, Any] = {}  # Call-ID -> simmedia.Session
        self._tasks: set[asyncio.Task] = set()
        self.keepalive_failures = 0
        from .simcontrol import SimControl

        self.control = SimControl(self)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.open()
        await self.register()
        if not self.cfg.quirks.no_keepalive:
            self._spawn(self._keepalive_loop())

    async def stop(self, unregister: bool = True) -> None:
        for task in list(self._tasks):
            task.cancel()
        for sess in list(self.sessions.values()):
            await sess.stop()
        if unregister and self.registered.is_set():
            try:
                await self.register(expires=0)
            except (TimeoutError, ConnectionError, PermissionError):
                pass
        await self.endpoint.close()

    async def open(self) -> None:
        """Bind the UDP socket or connect over TCP, without registering."""
        if self.cfg.transport == "tcp":
            self.server = await self.endpoint.connect(self.cfg.server_host, self.cfg.server_port, self.cfg.local_host)
        else:
            await self.endpoint.listen(self.cfg.local_host, 0, tcp=False)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _note(self, method: str, what: str, detail: object = None) -> None:
        async with self.changed:
            self.received.append((method, what, detail))
            self.changed.notify_all()

    async def wait_for(self, predicate, timeout: float = 10.0):
        """The first received entry matching ``predicate`` (awaits it)."""
        async with asyncio.timeout(timeout), self.changed:
            while True:
                for entry in self.received:
                    if predicate(entry):
                        return entry
                await self.changed.wait()

    # -- outgoing -------------------------------------------------------------------------------
    def _request(self, method: str, body: bytes = b"", content_type: str | None = None,
                 call_id: str | None = None, from_id: str | None = None) -> SipMessage:
        c = self.cfg
        host, port = self.endpoint.host, self.endpoint.port
        proto = "TCP" if c.transport == "tcp" else "UDP"
        msg = SipMessage(method=method, uri=f"sip:{c.server_id}@{c.realm}")
        msg.add("Via", f"SIP/2.0/{proto} {host}:{port};rport;branch={new_branch()}")
        msg.add("From", f"<sip:{from_id or c.device_id}@{c.realm}>;tag={self.tag}")
        msg.add("To", f"<sip:{c.device_id if method == 'REGISTER' else c.server_id}@{c.realm}>")
        msg.add("Call-ID", call_id or new_call_id(host))
        msg.add("CSeq", f"{next(self._cseq)} {method}")
        msg.add("Max-Forwards", "70")
        msg.add("User-Agent", "vsgw-gb-sim")
        if content_type:
            msg.add("Content-Type", content_type)
        msg.body = body
        return msg

    async def register(self, expires: int | None = None) -> None:
        """REGISTER, answer the digest challenge; PermissionError on 403."""
        expires = self.cfg.expires if expires is None else expires
        self.call_id = self.call_id or new_call_id(self.endpoint.host)
        auth = None
        for _ in range(2):
            req = self._request("REGISTER", call_id=self.call_id)
            req.add("Contact", f"<sip:{self.cfg.device_id}@{self.endpoint.host}:{self.endpoint.port}>")
            req.add("Expires", str(expires))
            req.add("X-GB-Ver", "3.0")
            if auth:
                req.add("Authorization", auth)
            resp = await self.endpoint.request(req, self.server)
            if resp.status == 401 and auth is None:
                auth = digest.authorization(resp.get("www-authenticate") or "", self.cfg.device_id,
                                            self.cfg.password, "REGISTER", req.uri or "")
                continue
            if resp.status == 200:
                if expires:
                    self.registered.set()
                else:
                    self.registered.clear()
                return
            raise PermissionError(f"REGISTER answered {resp.status} {resp.reason}")
        raise PermissionError("REGISTER challenge loop")

    async def send_manscdp(self, kind: str, cmd: str, fields: list | None = None, sn: int | None = None,
                           device_id: str | None = None) -> SipMessage:
        body = manscdp.build(kind, cmd, sn if sn is not None else next(self._sn), device_id or self.cfg.device_id,
                             fields, encoding=self.cfg.quirks.charset)
        sender = device_id if self.cfg.quirks.channel_from and cmd == "MediaStatus" else None
        return await self.send(self._request("MESSAGE", body, manscdp.CONTENT_TYPE, from_id=sender))

    async def send(self, req: SipMessage) -> SipMessage:
        """Send a request; answer a 401 once with a digest (a platform that challenges a request
        arriving from somewhere other than where the device registered)."""
        resp = await self.endpoint.request(req, self.server)
        challenge = resp.get("www-authenticate")
        if resp.status != 401 or not challenge:
            return resp
        auth = digest.authorization(challenge, self.cfg.device_id, self.cfg.password, req.method or "", req.uri or "")
        cseq, method = req.cseq
        req.set("Via", req.get("via", "").rsplit("branch=", 1)[0] + f"branch={new_branch()}")
        req.set("CSeq", f"{cseq + 1} {method}")
        req.set("Authorization", auth)
        return await self.endpoint.request(req, self.server)

    async def keepalive(self) -> int:
        resp = await self.send_manscdp("Notify", "Keepalive", [("Status", "OK")])
        return resp.status or 0

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.keepalive_interval)
            try:
                status = await self.keepalive()
            except (TimeoutError, ConnectionError):
                status = 0
            if status != 200:
                self.keepalive_failures += 1
                try:  # the platform forgot us (restart) or we timed out: register again
                    await self.register()
                except (TimeoutError, ConnectionError, PermissionError):
                    pass

    async def alarm(self, channel_id: str, priority: int = 1, method: int = 5, alarm_type: int = 2,
                    description: str = "motion") -> int:
        fields = self.control.alarm_fields(channel_id, priority, method, alarm_type, description)
        resp = await self.send_manscdp("Notify", "Alarm", fields, device_id=channel_id)
        return resp.status or 0

    async def notify_alarm(self, channel_id: str, priority: int = 1, method: int = 5, alarm_type: int = 2,
                           description: str = "motion") -> list[int]:
        """An alarm NOTIFY in every alarm subscription's dialog; the platform's statuses."""
        fields = self.control.alarm_fields(channel_id, priority, method, alarm_type, description)
        return [await self.control.notify(sub, "Alarm", fields, channel_id) for sub in self.control.of("Alarm")]

    async def notify_catalog(self, event: str, channel_id: str, name: str | None = None,
                             status: str = "ON") -> list[int]:
        """A catalog change (ADD, DEL, UPDATE, ON, OFF…) NOTIFYed in every catalog subscription."""
        item = [("DeviceID", channel_id), ("Event", event)]
        if event.upper() in ("ADD", "UPDATE"):
            item += [("Name", name or channel_id), ("Manufacturer", "vsgw"), ("Model", "gb-sim"),
                     ("CivilCode", self.cfg.device_id[:6]), ("Parental", 0), ("ParentID", self.cfg.device_id),
                     ("Status", status), ("Info", [("PTZType", 1)])]
        fields: list[tuple[str, object]] = [("SumNum", 1), ('DeviceList Num="1"', [("Item", item)])]
        return [await self.control.notify(sub, "Catalog", fields) for sub in self.control.of("Catalog")]

    async def end_subscriptions(self, cmd: str) -> list[int]:
        """NOTIFY ``Subscription-State: terminated`` in each ``cmd`` subscription and forget them."""
        out = []
        for sub in self.control.of(cmd):
            out.append(await self.control.notify(sub, cmd, [], state="terminated"))
            self.control._drop(sub.call_id)
        return out

    # -- incoming ------------------------------------------------------------------------------
    async def _handle(self, req: SipMessage, peer: Peer) -> None:
        method = req.method or ""
        if method == "MESSAGE":
            self.endpoint.reply(req, response(req, 200, to_tag=self.tag), peer)
            await self._message(manscdp.parse(req.body))
        elif method == "INVITE":
            await self._invite(req, peer)
        elif method == "ACK":
            sess = self.sessions.get(req.call_id)
            if sess is not None:
                sess.start(self)
        elif method == "BYE":
            self.endpoint.reply(req, response(req, 200), peer)
            sess = self.sessions.pop(req.call_id, None)
            if sess is not None:
                await sess.stop()
            await self._note("BYE", req.call_id)
        elif method == "SUBSCRIBE":
            await self.control.subscribe(req, peer)
        elif method == "INFO":
            self.endpoint.reply(req, response(req, 200), peer)
            text = req.body.decode(errors="replace")
            if (sess := self.sessions.get(req.call_id)) is not None:
                sess.mansrtsp(text)
            await self._note("INFO", text.split("\r\n", 1)[0], text)
        else:
            self.endpoint.reply(req, response(req, 200), peer)
            await self._note(method, "", req.body)

    async def _message(self, msg: Manscdp) -> None:
        cmd = msg.cmd.lower()
        if cmd == "devicecontrol":
            await self.control.control(msg)
            return
        await self._note("MESSAGE", msg.cmd, msg.device_id)
        if msg.kind != "query" or await self.control.query(msg):
            return
        if cmd == "catalog":
            await self._answer_catalog(msg.sn)
        elif cmd == "deviceinfo":
            await self.send_manscdp("Response", "DeviceInfo", [
                ("DeviceName", self.cfg.name), ("Result", "OK"), ("Manufacturer", "vsgw"),
                ("Model", "gb-sim"), ("Firmware", "1.0"), ("Channel", self.cfg.channels)], sn=msg.sn)
        elif cmd == "devicestatus":
            await self.send_manscdp("Response", "DeviceStatus", [
                ("Result", "OK"), ("Online", "ONLINE"), ("Status", "OK"), ("Record", "OFF"),
                ("DeviceTime", time.strftime("%Y-%m-%dT%H:%M:%S"))], sn=msg.sn)
        elif cmd == "recordinfo":
            start, end = msg.root.get("starttime"), msg.root.get("endtime")
            items = [("Item", [("DeviceID", msg.device_id), ("Name", "rec"), ("FilePath", f"/rec/{i}"),
                               ("StartTime", start), ("EndTime", end), ("Type", "time")]) for i in range(2)]
            for item in items:  # one record per packet, like the catalog quirk
                await self.send_manscdp("Response", "RecordInfo", [
                    ("Name", self.cfg.name), ("SumNum", len(items)), ('RecordList Num="1"', [item])],
                    sn=msg.sn, device_id=msg.device_id)

    async def _answer_catalog(self, sn: int) -> None:
        ids = self.cfg.channel_ids()
        items = [("Item", [("DeviceID", cid), ("Name", f"{self.cfg.name} {i + 1}"), ("Manufacturer", "vsgw"),
                           ("Model", "gb-sim"), ("Owner", "0"), ("CivilCode", self.cfg.device_id[:6]),
                           ("Address", "sim"), ("Parental", 0), ("ParentID", self.cfg.device_id),
                           ("SafetyWay", 0), ("RegisterWay", 1), ("Secrecy", 0), ("Status", "ON"),
                           ("Info", [("PTZType", 1)])]) for i, cid in enumerate(ids)]
        if self.cfg.quirks.split_catalog:
            packets = [[it] for it in items] + [[items[0]]] if items else [[]]  # one per packet + a duplicate
        else:
            packets = [items]
        for chunk in packets:
            await self.send_manscdp("Response", "Catalog", [
                ("SumNum", len(items)), (f'DeviceList Num="{len(chunk)}"', chunk)], sn=sn)

    async def _invite(self, req: SipMessage, peer: Peer) -> None:
        from .simmedia import Session as MediaSession

        self.endpoint.reply(req, response(req, 100), peer)
        channel = (req.uri or "").split(":", 1)[-1].split("@", 1)[0]
        try:
            offer = parse_sdp(req.body)
        except ValueError:
            self.endpoint.reply(req, response(req, 488, to_tag=self.tag), peer)
            return
        if channel not in self.cfg.channel_ids():
            self.endpoint.reply(req, response(req, 404, to_tag=self.tag), peer)
            return
        ssrc = offer.ssrc or "0000000001"
        if self.cfg.quirks.own_ssrc:
            ssrc = ssrc[0] + str((int(ssrc[1:]) + 4321) % 10**9).zfill(9)
        sess = MediaSession(self.cfg, offer, int(ssrc), channel)
        local_port = await sess.open()
        answer = Sdp(session=offer.session, origin_id=channel, host=self.cfg.local_host, port=local_port,
                     transport=_opposite(offer.transport), direction="sendonly",
                     ssrc=None if self.cfg.quirks.no_ssrc else ssrc, start=offer.start, end=offer.end)
        self.sessions[req.call_id] = sess
        out = response(req, 200, to_tag=self.tag)
        out.add("Contact", f"<sip:{channel}@{self.endpoint.host}:{self.endpoint.port}>")
        out.add("Content-Type", "APPLICATION/SDP")
        out.body = answer.encode()
        self.endpoint.reply(req, out, peer)
        sess.dialog = (req, out)
        await self._note("INVITE", offer.session, offer)


def _opposite(transport: str) -> str:
    return {"tcp-active": "tcp-passive", "tcp-passive": "tcp-active"}.get(transport, "udp")


async def run_simulator(server_host: str, server_port: int, device_id: str = "34020000001320000001",
                        password: str = "12345678", channels: int = 1, **kw: object) -> Simulator:
    """Start a registered simulator (the demo's GB camera); call ``await sim.stop()`` to end it."""
    sim = Simulator(SimConfig(server_host, server_port, device_id=device_id, password=password,
                              channels=channels, **kw))  # type: ignore[arg-type]
    await sim.start()
    return sim


async def units_forever(cfg: SimConfig, name: str, paced: bool = True) -> AsyncIterator:
    """The synthetic pattern, paced at the frame rate unless its sender paces it (encoding in a
    worker thread)."""
    from adapters.synthetic.encoder import PatternEncoder, PatternSpec

    encoder = PatternEncoder(PatternSpec(name=name, width=cfg.width, height=cfg.height, fps=cfg.fps,
                                         gop=cfg.fps, bitrate=300_000))
    loop = asyncio.get_running_loop()
    start, frame = loop.time(), 0
    while True:
        for unit in await asyncio.to_thread(encoder.encode):
            yield unit
        frame += 1
        if paced:
            await asyncio.sleep(max(0.0, start + frame / cfg.fps - loop.time()))


__all__ = ["QUIRK_FLAGS", "Quirks", "SimConfig", "Simulator", "run_simulator"]
