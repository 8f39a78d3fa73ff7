"""An in-process hub and recorder, wired as the gateway wires them, for the recorder tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from adapters import open_source
from gateway.bus import MemoryBus
from gateway.catalog.models import Camera, CameraClass, RecordingPolicy, Sector, StreamSource
from gateway.eventlog import EventLog
from gateway.hub.hub import MAIN, Hub
from gateway.hub.packet import Packet
from gateway.hub.stream import CameraStream, StreamConfig
from gateway.settings import RecorderSettings
from recorder.service import Recorder

FAST = StreamConfig(backoff_initial=0.3, backoff_max=1.0, stable_after=1.0)


def camera(
    camera_id: str,
    url: str,
    camera_class: CameraClass = CameraClass.B,
    recording: RecordingPolicy = RecordingPolicy.CONTINUOUS,
) -> Camera:
    return Camera(
        id=camera_id,
        name=f"camera {camera_id[-3:]}",
        camera_class=camera_class,
        region="340102",
        owner_unit="test",
        sector=Sector.POLICE,
        source=StreamSource(main_url=url),
        recording=recording,
    )


@asynccontextmanager
async def recording(data_dir: Path, **settings: Any) -> AsyncIterator[tuple[Hub, Recorder]]:
    """A started hub and recorder; closed (segments finished) on exit."""
    options: dict[str, Any] = {"segment_seconds": 2, "gap_seconds": 1.5, "batch_seconds": 0.1}
    hub = Hub(FAST, probe_timeout=8)
    bus = MemoryBus()
    events = EventLog(data_dir / "events", bus)
    await events.start()
    recorder = Recorder(RecorderSettings(**{**options, **settings}), data_dir, hub, bus, events)
    await recorder.start()
    try:
        yield hub, recorder
    finally:
        await recorder.close()
        await hub.close()
        await events.close()


async def attach(hub: Hub, recorder: Recorder, cam: Camera) -> Collector:
    """What ``Gateway._attach`` and ``recorder.apply`` do for a continuous camera, with a
    collector subscribed alongside the recorder before the first packet."""
    factory = partial(open_source, cam.source.main_url, open_timeout=5, read_timeout=5)
    stream = await hub.put(cam.id, MAIN, factory, always_on=True)
    collector = Collector(stream)
    await recorder.apply(cam)
    return collector


class Collector:
    """Another consumer of the same stream: what the hub delivered, for comparison."""

    def __init__(self, stream: CameraStream) -> None:
        self.packets: list[Packet] = []
        self._subscriber = stream.subscribe("test-collector", max_packets=50_000)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for packet in self._subscriber:
            self.packets.append(packet)

    async def close(self) -> list[Packet]:
        self._subscriber.close()
        await self._task
        return self.packets


async def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
