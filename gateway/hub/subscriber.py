"""A consumer's bounded view of one camera stream.

The stream calls :meth:`Subscriber.offer` on the event loop for every packet; it never
blocks and never lets the queue grow past its bound. When a consumer falls behind, its
queued packets are discarded and it resumes at the next video keyframe (a decoder cannot
start anywhere else), so a slow consumer loses pictures but never delays the camera or any
other consumer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from gateway.errors import StreamClosed
from gateway.hub.packet import Packet


class Subscriber:
    def __init__(
        self,
        name: str,
        *,
        max_packets: int = 300,
        max_bytes: int = 32 * 1024 * 1024,
        on_close: Callable[[Subscriber], None] | None = None,
    ) -> None:
        self.name = name
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.delivered = 0
        self.dropped = 0  # packets discarded because this consumer was too slow
        self.overflows = 0  # times the queue overflowed and skipped to a keyframe
        self._queue: deque[Packet] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._waiting_keyframe = False
        self._closed = False
        self._close_reason = ""
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued(self) -> int:
        return len(self._queue)

    def offer(self, packet: Packet) -> None:
        """Queue ``packet`` unless this consumer must first skip to a keyframe."""
        if self._closed:
            return
        if self._waiting_keyframe:
            if not packet.is_video_keyframe:
                self.dropped += 1
                return
            self._waiting_keyframe = False
        if len(self._queue) >= self.max_packets or self._bytes + len(packet.data) > self.max_bytes:
            self.overflows += 1
            self.dropped += len(self._queue)
            self._queue.clear()
            self._bytes = 0
            if not packet.is_video_keyframe:
                self.dropped += 1
                self._waiting_keyframe = True
                return
        self._queue.append(packet)
        self._bytes += len(packet.data)
        self._ready.set()

    async def get(self) -> Packet:
        """The next packet; raises :class:`StreamClosed` once closed and drained."""
        while not self._queue:
            if self._closed:
                raise StreamClosed(f"stream closed for {self.name}: {self._close_reason}")
            self._ready.clear()
            await self._ready.wait()
        packet = self._queue.popleft()
        self._bytes -= len(packet.data)
        self.delivered += 1
        return packet

    def get_nowait(self) -> Packet | None:
        if not self._queue:
            return None
        packet = self._queue.popleft()
        self._bytes -= len(packet.data)
        self.delivered += 1
        return packet

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Packet:
        try:
            return await self.get()
        except StreamClosed:
            raise StopAsyncIteration from None

    def close(self, reason: str = "unsubscribed") -> None:
        """Stop receiving; queued packets can still be read. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        self._ready.set()
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback(self)
