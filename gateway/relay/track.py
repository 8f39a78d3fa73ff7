"""The pass-through video track: a hub subscriber's H.264 access units, each with the RTP
timestamp this viewer sends it with.

No decoder or encoder ever runs: :mod:`gateway.relay.sender` packetises the camera's access
units as they are. Because of that, keyframe requests (PLI) from the viewer cannot be
honoured; instead the hub's subscriber starts with the cached GOP, from its IDR, and this
track replays it faster than real time with its RTP timestamps compressed to match. The
viewer decodes the IDR at once and, a few hundred milliseconds later, has caught up with the
live picture, whatever the camera's GOP length.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import av
from aiortc.mediastreams import (
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    MediaStreamError,
    MediaStreamTrack,
)

from gateway.errors import StreamClosed
from gateway.hub.packet import Packet
from gateway.hub.subscriber import Subscriber

# A packet read this long after it arrived from the camera is history (the cached GOP, or a
# backlog): it is replayed fast. Live packets are read within milliseconds of arrival.
LIVE_LAG_S = 0.1


class PassThroughTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, subscriber: Subscriber, *, catchup_speed: float) -> None:
        super().__init__()
        self._subscriber = subscriber
        self._speed = catchup_speed
        self._last_src: int | None = None  # source pts of the last packet sent, 90 kHz
        self._out = 0  # RTP timestamp offset of the last packet sent, 90 kHz
        self.source_ended = False  # the hub closed the stream (camera removed)

    async def recv(self) -> av.Packet[Any]:
        """The next access unit as aiortc's stock sender loop takes it (``pack``, no encoder);
        the relay installs its own loop (:mod:`.sender`), which calls :meth:`next_unit`."""
        packet, timestamp = await self.next_unit()
        out = av.Packet(packet.data)
        out.pts = timestamp
        out.time_base = VIDEO_TIME_BASE
        return out

    async def next_unit(self) -> tuple[Packet, int]:
        """The next access unit and its RTP timestamp offset (90 kHz) for this viewer."""
        packet = await self._next_video()
        src = _ticks(packet)
        if self._last_src is not None:
            step = max(1, src - self._last_src)  # increasing even if the source repeats pts
            if time.time() - packet.arrival > LIVE_LAG_S:
                step = max(1, round(step / self._speed))
                # Paced like its compressed timestamps, so that the viewer's jitter buffer
                # sees a steady (fast) stream, not one burst that overflows a socket buffer.
                await asyncio.sleep(step / VIDEO_CLOCK_RATE)
            self._out += step
        self._last_src = src
        return packet, self._out

    async def _next_video(self) -> Packet:
        while True:
            try:
                packet = await self._subscriber.get()
            except StreamClosed:
                self.source_ended = True
                self.stop()
                raise MediaStreamError from None
            if packet.kind != "video":
                continue
            if self._last_src is None and not packet.keyframe:
                continue  # joined between keyframes (no cached GOP): a decoder needs an IDR
            return packet

    def stop(self) -> None:
        self._subscriber.close("viewer left")
        super().stop()


def _ticks(packet: Packet) -> int:
    tb = packet.codec.time_base
    return packet.pts * VIDEO_CLOCK_RATE * tb.numerator // tb.denominator
