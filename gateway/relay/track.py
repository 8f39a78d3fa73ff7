"""The pass-through video track: a hub subscriber's H.264 access units as ``av.Packet``s.

aiortc's sender packetises an ``av.Packet`` as it is (``pack``), where it would encode a
frame: no decoder or encoder ever runs here. Because of that, keyframe requests (PLI) from
the viewer cannot be honoured; instead the hub's subscriber starts with the cached GOP, from
its IDR, and this track replays it faster than real time with its RTP timestamps compressed
to match. The viewer decodes the IDR at once and, a few hundred milliseconds later, has
caught up with the live picture, whatever the camera's GOP length.
"""

from __future__ import annotations

import asyncio
import time

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
        self.sent = 0  # access units handed to the sender
        self.replayed = 0  # of those, replayed from history faster than real time
        self.first_sent_at: float | None = None  # time.monotonic() of the first (the IDR)

    async def recv(self) -> av.Packet:
        packet = await self._next_video()
        src = _ticks(packet)
        if self._last_src is not None:
            step = max(1, src - self._last_src)  # increasing even if the source repeats pts
            if time.time() - packet.arrival > LIVE_LAG_S:
                step = max(1, round(step / self._speed))
                self.replayed += 1
                # Paced like its compressed timestamps, so that the viewer's jitter buffer
                # sees a steady (fast) stream, not one burst that overflows a socket buffer.
                await asyncio.sleep(step / VIDEO_CLOCK_RATE)
            self._out += step
        else:
            self.first_sent_at = time.monotonic()
        self._last_src = src
        self.sent += 1
        out = av.Packet(packet.data)
        out.pts = self._out
        out.time_base = VIDEO_TIME_BASE
        return out

    async def _next_video(self) -> Packet:
        while True:
            try:
                packet = await self._subscriber.get()
            except StreamClosed:
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
