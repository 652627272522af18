"""Live media to a superior: a hub reader's access units as PS packs in RTP (R1).

Units are sent as they leave the reader, not paced: the hub's bounded reader is what limits the lag,
and the cached GOP a new reader starts from goes out at once so the superior can decode at once.
Every unit (picture or audio) is one PS pack, fragmented into RTP packets of at most ``MTU`` bytes
(payload type 96, the 90 kHz DTS as the RTP timestamp, the marker on a pack's last packet). UDP
goes from our own socket, whose port the SDP answer names; over TCP (the superior listens,
``a=setup:passive`` in its offer) we connect and frame each packet with RFC 4571's length.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.media import PCMA
from gateway.media.stream import Reader, StreamClosed

from ..psmux import mux_ps
from ..rtp import packetize_ps, send_packets

MTU = 1400
PT = 96


class HubSender:
    def __init__(self, transport: str, remote: tuple[str, int], ssrc: int, local_host: str) -> None:
        if transport not in ("udp", "tcp-passive"):
            raise ValueError(f"media transport {transport!r} is not served to superiors")
        self.transport, self.remote, self.local_host = transport, remote, local_host
        self.ssrc = ssrc & 0xFFFFFFFF
        self.local_port = 0
        self.packets_sent = self.units_sent = self.bytes_sent = 0
        self._seq = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> int:
        """Bind (UDP) before the SDP answer names our port; TCP connects when sending starts."""
        if self.transport == "udp":
            loop = asyncio.get_running_loop()
            # ICMP errors from a superior that went away are ignored: its registrar notices it is gone
            self._udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(self.local_host, 0),
                                                               remote_addr=self.remote)
            self.local_port = self._udp.get_extra_info("sockname")[1]
        return self.local_port

    async def run(self, reader: Reader) -> None:
        """Send until the reader is closed (StreamClosed ends quietly); OSError when TCP fails."""
        if self.transport == "tcp-passive":
            _, self._writer = await asyncio.open_connection(*self.remote, local_addr=(self.local_host, 0))
            self.local_port = self._writer.get_extra_info("sockname")[1]
        audio = PCMA  # the PSM names the audio stream by the codec of the last audio unit
        try:
            while True:
                unit = await reader.get()
                if unit.is_audio:
                    audio = unit.codec
                packets = packetize_ps(mux_ps(unit, unit.dts, audio), self._seq, unit.dts, self.ssrc, PT, MTU)
                self._seq = (self._seq + len(packets)) & 0xFFFF
                await send_packets(packets, self._udp, self._writer)
                self.packets_sent += len(packets)
                self.bytes_sent += sum(len(p) for p in packets)
                self.units_sent += 1
        except StreamClosed:
            return

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
