"""Decoding one keyframe (in a worker thread): a JPEG snapshot, or the picture size for StreamInfo."""

from __future__ import annotations

import av
import cv2

from gateway.media import AccessUnit

DECODERS = {"h264": "h264", "h265": "hevc"}


def decode_keyframe(keyframe: AccessUnit) -> av.VideoFrame:
    ctx = av.CodecContext.create(DECODERS[keyframe.codec], "r")
    frames = list(ctx.decode(av.Packet(keyframe.data))) + list(ctx.decode(None))
    if not frames:
        raise ValueError("no picture in the keyframe")
    return frames[0]


def picture_size(keyframe: AccessUnit) -> tuple[int, int]:
    frame = decode_keyframe(keyframe)
    return frame.width, frame.height


def snapshot_jpeg(keyframe: AccessUnit, quality: int = 85) -> tuple[bytes, int, int]:
    frame = decode_keyframe(keyframe)
    ok, jpeg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return jpeg.tobytes(), frame.width, frame.height
