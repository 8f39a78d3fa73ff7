"""JPEG of a camera's latest keyframe, decoded on demand in a worker thread."""

from __future__ import annotations

import asyncio

import av
import cv2

from gateway import errors
from gateway.hub.packet import Packet
from gateway.hub.stream import CameraStream


async def snapshot(stream: CameraStream, *, timeout: float = 10.0, quality: int = 85) -> bytes:
    keyframe = await stream.next_keyframe(timeout)
    return await asyncio.to_thread(encode_jpeg, keyframe, quality)


def encode_jpeg(keyframe: Packet, quality: int = 85) -> bytes:
    """Decode one keyframe (parameter sets travel in front of it) and encode it as JPEG."""
    decoder = av.CodecContext.create(keyframe.codec.name, "r")
    assert isinstance(decoder, av.VideoCodecContext)  # the hub's keyframes are video
    frames: list[av.VideoFrame] = []
    try:
        frames += decoder.decode(av.Packet(keyframe.data))
        frames += decoder.decode(None)  # flush: decoders hold a frame back
    except av.error.FFmpegError as exc:
        raise errors.SourceError(f"the camera's keyframe does not decode: {exc}") from None
    if not frames:
        raise errors.SourceError("the camera's keyframe produced no picture")
    image = frames[0].to_ndarray(format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise errors.GatewayError("JPEG encoding failed")
    return jpeg.tobytes()
