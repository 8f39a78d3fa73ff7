"""The registry of camera streams: one :class:`CameraStream` per camera and stream choice.

It also keeps the health of on-demand cameras current: a camera nobody watches is probed
now and then (connect, wait for one keyframe, let the idle timer close it), so the catalog's
online rate is true without holding thousands of idle connections open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterator

from gateway import errors
from gateway.hub.stream import CameraStream, SourceFactory, StreamConfig
from gateway.hub.subscriber import Subscriber

log = logging.getLogger(__name__)

MAIN = "main"
SUB = "sub"


class Hub:
    def __init__(
        self,
        config: StreamConfig | None = None,
        *,
        probe_interval: float = 300.0,
        probe_timeout: float = 15.0,
        probe_concurrency: int = 8,
    ) -> None:
        self.config = config or StreamConfig()
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self._streams: dict[tuple[str, str], CameraStream] = {}
        self._probe_slots = asyncio.Semaphore(probe_concurrency)
        self._prober: asyncio.Task[None] | None = None

    def __iter__(self) -> Iterator[CameraStream]:
        return iter(self._streams.values())

    def get(self, camera_id: str, stream: str = MAIN) -> CameraStream:
        try:
            return self._streams[(camera_id, stream)]
        except KeyError:
            raise errors.NotFound(f"camera {camera_id} has no {stream} stream") from None

    def find(self, camera_id: str, stream: str = MAIN) -> CameraStream | None:
        return self._streams.get((camera_id, stream))

    async def put(
        self, camera_id: str, stream: str, source_factory: SourceFactory, *, always_on: bool
    ) -> CameraStream:
        """Add the stream, or give an existing one its new source and policy."""
        existing = self._streams.get((camera_id, stream))
        if existing is not None:
            await existing.restart(source_factory)
            existing.always_on = always_on
            return existing
        created = CameraStream(camera_id, source_factory, self.config, always_on=always_on)
        self._streams[(camera_id, stream)] = created
        if always_on:
            created.start()
        return created

    async def remove(self, camera_id: str, stream: str | None = None) -> None:
        for key in [k for k in self._streams if k[0] == camera_id and stream in (None, k[1])]:
            await self._streams.pop(key).close()

    def subscribe(self, camera_id: str, name: str, stream: str = MAIN) -> Subscriber:
        return self.get(camera_id, stream).subscribe(name)

    async def probe(self, camera: CameraStream) -> None:
        """Refresh an idle camera's health; a running stream needs no probe."""
        if camera.running:
            return
        async with self._probe_slots:
            with contextlib.suppress(errors.GatewayError):
                await camera.next_keyframe(self.probe_timeout)
            # A probe answers one question: let go at once rather than after the idle delay,
            # so probing thousands of idle cameras holds few connections at any moment.
            if camera.subscriber_count == 0 and not camera.always_on:
                await camera.stop()

    def start_probing(self) -> None:
        self._prober = asyncio.get_running_loop().create_task(self._probe_loop(), name="probe")

    async def _probe_loop(self) -> None:
        while True:
            main_streams = [s for (_, kind), s in self._streams.items() if kind == MAIN]
            await asyncio.gather(*(self.probe(s) for s in main_streams), return_exceptions=True)
            # Jitter spreads the probes of many gateways and cameras over time.
            await asyncio.sleep(self.probe_interval * random.uniform(0.9, 1.1))

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        await asyncio.gather(*(s.close() for s in self._streams.values()))
        self._streams.clear()
