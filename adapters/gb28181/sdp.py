"""SDP as GB/T 28181 uses it: the platform's offer (recvonly) and the device's answer (sendonly).

Extra lines: ``y=`` the 10-digit SSRC, ``u=`` the playback URI, ``f=`` media format;
``a=setup:active|passive`` for TCP; ``a=streamnumber`` (2022) and its vendor aliases for sub-streams.
"""

from __future__ import annotations

from dataclasses import dataclass

RTPMAP = ("a=rtpmap:96 PS/90000", "a=rtpmap:98 H264/90000", "a=rtpmap:100 H265/90000")


@dataclass(slots=True)
class Sdp:
    session: str = "Play"
    origin_id: str = ""
    host: str = ""
    port: int = 0
    transport: str = "udp"  # udp | tcp-passive | tcp-active (from the sender of this SDP)
    direction: str = "recvonly"
    ssrc: str | None = None
    start: int = 0
    end: int = 0
    uri: str | None = None
    speed: int | None = None
    substream: int = 0

    def encode(self) -> bytes:
        tcp = self.transport.startswith("tcp")
        lines = ["v=0", f"o={self.origin_id} 0 0 IN IP4 {self.host}", f"s={self.session}"]
        if self.uri:
            lines.append(f"u={self.uri}")
        lines += [f"c=IN IP4 {self.host}", f"t={self.start} {self.end}",
                  f"m=video {self.port} {'TCP/RTP/AVP' if tcp else 'RTP/AVP'} 96 98 100",
                  f"a={self.direction}", *RTPMAP]
        if tcp:
            lines += [f"a=setup:{self.transport.split('-')[1]}", "a=connection:new"]
        if self.speed:
            lines.append(f"a=downloadspeed:{self.speed}")
        if self.substream:
            lines += [f"a=streamnumber:{self.substream}", f"a=stream:{self.substream}"]
        if self.ssrc:
            lines.append(f"y={self.ssrc}")
        return ("\r\n".join(lines) + "\r\n").encode()


class SdpError(ValueError):
    pass


def parse(body: bytes) -> Sdp:
    out = Sdp(direction="")
    proto = ""
    try:
        text = body.decode("utf-8", errors="replace")
        for line in text.splitlines():
            key, _, value = line.strip().partition("=")
            if key == "o":
                out.origin_id = value.split(" ", 1)[0]
            elif key == "s":
                out.session = value.strip()
            elif key == "c":
                out.host = value.split()[-1]
            elif key == "t":
                a, b = value.split()[:2]
                out.start, out.end = int(a), int(b)
            elif key == "u":
                out.uri = value
            elif key == "y":
                out.ssrc = value.strip() or None
            elif key == "m" and value.startswith("video"):
                parts = value.split()
                out.port, proto = int(parts[1]), parts[2].upper()
            elif key == "a":
                name, _, arg = value.partition(":")
                if name in ("sendonly", "recvonly", "sendrecv"):
                    out.direction = name
                elif name == "setup":
                    out.transport = f"tcp-{arg.strip()}"
                elif name in ("streamnumber", "stream", "streamprofile") and arg.strip().isdigit():
                    out.substream = int(arg)
                elif name == "streamMode" and arg.strip().upper() == "SUB":
                    out.substream = 1
                elif name == "downloadspeed" and arg.strip().isdigit():
                    out.speed = int(arg)
    except (ValueError, IndexError) as exc:
        raise SdpError(f"bad SDP: {exc}") from None
    if not out.host or not proto:
        raise SdpError("bad SDP: no c= or m=video")
    if proto.startswith("TCP") and not out.transport.startswith("tcp"):
        out.transport = "tcp-passive"
    if not proto.startswith("TCP"):
        out.transport = "udp"
    return out


def ssrc_for(realm: str, number: int, history: bool = False) -> str:
    """10 digits: live/history flag, digits 4–8 of the domain, a 4-digit stream number."""
    return f"{1 if history else 0}{realm[3:8]}{number % 10000:04d}"
