"""UDP segmentation offload for the fan-out: one ``sendmsg`` per run of equal-size packets.

A frame's RTP packets are mostly FU-A fragments of one size; Linux's ``UDP_SEGMENT`` lets one
system call hand the kernel a train of them, which it splits into the same datagrams a
``sendto`` per packet would have made. Whatever cannot go that way (a single packet, a
transport already buffering, a kernel without GSO) goes through the asyncio transport, in order.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import struct

UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)  # linux/udp.h; Python names it from 3.12
MAX_SEGMENTS = 64  # UDP_MAX_SEGMENTS
MAX_TRAIN = 65_000  # one UDP send, headers included, stays below 64 KiB


@functools.cache
def segmentation_works() -> bool:
    """Once per process: does this kernel split a train into datagrams? A kernel (or sandbox) that
    ignored the option would send one large datagram, which no WebRTC peer could use."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(1.0)
            tx.sendmsg([b"a" * 100 + b"b" * 60], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", 100))], 0,
                       rx.getsockname())
            return rx.recv(4096) == b"a" * 100 and rx.recv(4096) == b"b" * 60
    except OSError:
        return False


class GsoSender:
    """Sends through ``transport``'s socket (a duplicate descriptor of it) with segmentation."""

    def __init__(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport
        raw = transport.get_extra_info("socket")
        self._sock: socket.socket | None = None
        if raw is not None and raw.family == socket.AF_INET and segmentation_works():
            self._sock = socket.socket(raw.family, raw.type, fileno=os.dup(raw.fileno()))
            self._sock.setblocking(False)
        self.trains = 0  # sendmsg calls that carried more than one packet

    def send(self, packets: list[bytes], addr: tuple) -> None:
        transport, sock = self.transport, self._sock
        i, n = 0, len(packets)
        while i < n:
            if sock is None or transport.get_write_buffer_size():  # keep order behind what is queued
                for packet in packets[i:]:
                    transport.sendto(packet, addr)
                return
            size = len(packets[i])
            limit = min(n, i + MAX_SEGMENTS, i + MAX_TRAIN // size)
            j = i + 1
            while j < limit and len(packets[j]) == size:
                j += 1
            if j < limit and len(packets[j]) < size:  # the one shorter segment a train may end with
                j += 1
            if j - i == 1:
                transport.sendto(packets[i], addr)
            else:
                try:
                    sock.sendmsg([b"".join(packets[i:j])], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))],
                                 0, addr)
                    self.trains += 1
                except BlockingIOError:
                    sock = None  # the socket is full: the transport queues the rest, in order
                    continue
                except OSError:  # no GSO here (or not for this route): per packet from now on
                    self.close()
                    sock = None
                    continue
            i = j

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
