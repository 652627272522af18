"""The RTCP a sending stream owes its receiver: a sender report with SDES every 0.5–1.5 s once
media flowed (RFC 3550's randomised interval), mapping RTP time to the camera's capture clock so
the page can line streams up and measure latency, and a BYE when it stops. Video viewers and their
audio share it; receiver feedback (NACK, PLI) stays with each."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from aiortc.rtp import RtcpByePacket, RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket

from . import compat

NTP_EPOCH = 2208988800


def ntp(t: float) -> int:
    return int((t + NTP_EPOCH) * (1 << 32))


class SenderReports:
    """Mixed into a sender that keeps ``ssrc``, ``packets``, ``octets``, ``last_ts``,
    ``last_wallclock``, ``_cname`` and ``_sender``; ``clock_rate`` is its RTP clock."""

    clock_rate: int
    ssrc: int
    packets: int
    octets: int
    last_ts: int
    last_wallclock: float
    _cname: str
    _sender: Any

    def _rtcp_transport(self) -> Any:
        return self._sender.transport

    async def _run_rtcp(self) -> None:
        started, exited = compat.run_events(self._sender, "rtcp")
        started.set()
        try:
            while True:
                await asyncio.sleep(0.5 + random.random() * 0.5)
                if self.packets:
                    await self._send_rtcp(bytes(self._sender_report()) + bytes(self._sdes()))
        except asyncio.CancelledError:
            await self._send_rtcp(bytes(RtcpByePacket(sources=[self.ssrc])))
        finally:
            exited.set()

    def _sender_report(self) -> RtcpSrPacket:
        now = time.time()
        rtp_now = (self.last_ts + int((now - self.last_wallclock) * self.clock_rate)) & 0xFFFFFFFF
        info = RtcpSenderInfo(ntp_timestamp=ntp(now), rtp_timestamp=rtp_now,
                              packet_count=self.packets & 0xFFFFFFFF, octet_count=self.octets & 0xFFFFFFFF)
        return RtcpSrPacket(ssrc=self.ssrc, sender_info=info)

    def _sdes(self) -> RtcpSdesPacket:
        return RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=self.ssrc, items=[(1, self._cname)])])

    async def _send_rtcp(self, data: bytes) -> None:
        try:
            await compat.send_rtcp(self._rtcp_transport(), data)
        except ConnectionError:
            pass
