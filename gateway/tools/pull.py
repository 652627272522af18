"""Pull a camera's live video over gRPC (mTLS) into a playable file (MPEG-TS, codec copy).

    python -m gateway.tools.pull CAMERA_ID --out clip.ts --target 127.0.0.1:50051 \\
        --ca ca.pem --cert client.pem --key client.key [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
from fractions import Fraction
from pathlib import Path
import sys

import av
import grpc

from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc

AV_CODEC = {"h264": "h264", "h265": "hevc"}
TIME_BASE = Fraction(1, 90_000)


def channel(target: str, ca: str, cert: str | None, key: str | None, token: str | None,
            options: list[tuple[str, object]] | None = None) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )
    if token:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return grpc.aio.secure_channel(target, creds, options=options)


async def pull(stub: rpc.StreamServiceStub, camera: str, out: Path, seconds: float, substream: int = 0) -> int:
    """Write ``seconds`` of live video to ``out``; returns the number of access units written."""
    container = av.open(str(out), "w", format="mpegts")
    stream = None
    first_dts: int | None = None
    written = 0
    call = stub.PullLive(pb.PullLiveRequest(camera_id=camera, substream=substream))
    try:
        async for msg in call:
            if msg.HasField("info"):
                stream = container.add_stream(AV_CODEC[msg.info.codec], rate=25)
                stream.time_base = TIME_BASE
                continue
            unit = msg.unit
            if stream is None:
                raise RuntimeError("the server sent media before stream info")
            first_dts = unit.dts if first_dts is None else first_dts
            packet = av.Packet(unit.data)
            packet.stream = stream
            packet.time_base = TIME_BASE
            packet.pts, packet.dts = unit.pts - first_dts, unit.dts - first_dts
            packet.is_keyframe = unit.keyframe
            container.mux(packet)
            written += 1
            if (unit.dts - first_dts) / 90_000 >= seconds:
                break
    finally:
        call.cancel()
        container.close()
    return written


async def main_async(args: argparse.Namespace) -> int:
    async with channel(args.target, args.ca, args.cert, args.key, args.token) as ch:
        try:
            n = await pull(rpc.StreamServiceStub(ch), args.camera, Path(args.out), args.seconds, args.substream)
        except grpc.aio.AioRpcError as exc:
            hint = ""
            if exc.code() == grpc.StatusCode.UNAVAILABLE and not args.cert:
                hint = " (a gateway that requires mTLS refuses the TLS handshake without --cert and --key)"
            print(f"pull: {exc.code().name}: {exc.details()}{hint}", file=sys.stderr)
            return 1
    print(f"wrote {n} access units to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gateway.tools.pull", description=__doc__.split("\n")[0])
    p.add_argument("camera")
    p.add_argument("--out", required=True, help="output file (.ts)")
    p.add_argument("--target", default="127.0.0.1:50051")
    p.add_argument("--ca", required=True, help="CA certificate that signed the gateway's certificate")
    p.add_argument("--cert", help="client certificate (mTLS)")
    p.add_argument("--key", help="client private key (mTLS)")
    p.add_argument("--token", help="bearer token (instead of or besides the client certificate)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--substream", type=int, default=0)
    return asyncio.run(main_async(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
