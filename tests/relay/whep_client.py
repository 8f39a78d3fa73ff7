"""A WHEP viewer for tests: an aiortc peer connection that receives, decodes and measures.

It also records what reached its H.264 decoder (the depacketised access units), so a test
can compare the bytes with the hub's packets and show that no encoder ran in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import h264
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.codecs.annexb import split_nals


def nal_digest(access_unit: bytes) -> str:
    """The hash of an access unit's NAL units, whatever their start codes (3 or 4 bytes)."""
    digest = hashlib.sha256()
    for nal in split_nals(access_unit):
        digest.update(len(nal).to_bytes(4, "big") + nal)
    return digest.hexdigest()


async def eventually(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@dataclass
class Frame:
    at: float  # time.monotonic() when decoded
    width: int
    height: int


@dataclass
class Viewer:
    """One WHEP session seen from the client side."""

    pc: RTCPeerConnection
    location: str
    answered_at: float
    frames: list[Frame] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def first_frame_delay(self) -> float | None:
        return self.frames[0].at - self.answered_at if self.frames else None

    async def wait_frames(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.frames)} of {count} frames within {timeout} s "
                    f"(connection {self.pc.connectionState})"
                )
            await asyncio.sleep(0.02)

    def fps(self, since: float) -> float:
        """Decoded frames per second after ``since`` (monotonic time)."""
        times = [f.at for f in self.frames if f.at >= since]
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0

    async def close(self, http: httpx.AsyncClient | None = None) -> None:
        if http is not None:
            response = await http.delete(self.location)
            assert response.status_code == 200, response.text
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.pc.close()


async def open_viewer(http: httpx.AsyncClient, camera_id: str, stream: str = "main") -> Viewer:
    """Offer, POST, answer; raises ``httpx.HTTPStatusError`` (with the body) if refused."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    pc.on("track", received.set_result)
    await pc.setLocalDescription(await pc.createOffer())
    try:
        response = await http.post(
            f"/api/v1/cameras/{camera_id}/whep",
            params={"stream": stream},
            content=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp"},
        )
        response.raise_for_status()
    except BaseException:
        await pc.close()
        raise
    assert response.headers["content-type"].startswith("application/sdp")
    viewer = Viewer(pc, response.headers["location"], 0.0)
    await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
    viewer.answered_at = time.monotonic()
    viewer.reader = asyncio.create_task(_read(viewer, await received))
    return viewer


async def _read(viewer: Viewer, track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame: Any = await track.recv()
            viewer.frames.append(Frame(time.monotonic(), frame.width, frame.height))


class DecoderTap:
    """Digests of every access unit that reached aiortc's H.264 decoders in this process."""

    def __init__(self) -> None:
        self.digests: list[str] = []
        self._lock = threading.Lock()  # aiortc decodes in a thread of its own

    @contextlib.contextmanager
    def installed(self) -> Iterator[DecoderTap]:
        original = h264.H264Decoder.decode

        def decode(decoder: h264.H264Decoder, encoded_frame: Any) -> Any:
            with self._lock:
                self.digests.append(nal_digest(encoded_frame.data))
            return original(decoder, encoded_frame)

        h264.H264Decoder.decode = decode  # type: ignore[method-assign]
        try:
            yield self
        finally:
            h264.H264Decoder.decode = original  # type: ignore[method-assign]
