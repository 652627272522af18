"""One JPEG from a keyframe (runs in a worker thread)."""

from __future__ import annotations

import av
import cv2

from gateway.media import AccessUnit

DECODERS = {"h264": "h264", "h265": "hevc"}


def snapshot_jpeg(keyframe: AccessUnit, quality: int = 85) -> tuple[bytes, int, int]:
    ctx = av.CodecContext.create(DECODERS[keyframe.codec], "r")
    frames = list(ctx.decode(av.Packet(keyframe.data))) + list(ctx.decode(None))
    if not frames:
        raise ValueError("no picture in the keyframe")
    image = frames[0].to_ndarray(format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return jpeg.tobytes(), frames[0].width, frames[0].height
