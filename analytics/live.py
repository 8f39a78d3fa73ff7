"""Live sampling: the gateway's half of live analysis.

For each selected camera a task on the gateway's event loop subscribes to the camera's hub
stream — for ``window`` seconds every ``every`` seconds (``interval``, the windows of many
cameras spread at random over the period) or all the time (``continuous``) — and once a
second hands its worker (:mod:`analytics.worker`) a :class:`~analytics.messages.LiveBatch`:
the packets the worker will decode (keyframes only with the ``keyframes`` strategy, every
video packet otherwise) and, for every other packet, just its arrival time. Per packet the
gateway does one comparison and one list append; decoding and pictures stay in the worker.

The channel to the worker is bounded. When it is full the batch is not sent: its packets
are kept as arrival times only and go with the next batch (so the worker does not take an
overloaded channel for a silent camera), and with strategies that decode whole GOPs the
next packets sent start at a keyframe. Counters (:class:`FeedStats`) measure what this
costs the gateway's event loop.

Which cameras (``analytics.live``): those with one of ``tags`` and of one of ``classes``
(empty: any), except, unless ``recorded``, cameras that record continuously: those are
diagnosed from their recordings, which cover all of their time at no extra pull. Which
stream: the sub stream where the camera has one (``stream: sub``, smaller pictures, less
traffic on the camera network), else main; always the same one, as the scene reference is
learned from its pictures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from analytics.messages import Forget, LiveBatch, LiveJob, LivePause, LiveStart
from analytics.sampler import Strategy
from gateway.catalog.models import Camera, RecordingPolicy
from gateway.hub.hub import MAIN, SUB, Hub
from gateway.hub.packet import Packet
from gateway.hub.stream import CameraStream
from gateway.hub.subscriber import Subscriber
from gateway.settings import LiveSamplingSettings

log = logging.getLogger(__name__)

BATCH_SECONDS = 1.0  # also the resolution of the silence timer
MAX_CARRIED = 1024  # arrival times kept while the channel stays full
NO_STREAM_RETRY = 5.0  # the camera has no stream in the hub (yet): look again after this

Send = Callable[[LiveJob], bool]  # never blocks: False if the channel is full


@dataclass(slots=True)
class FeedStats:
    """What live sampling costs the gateway process (all cameras, since start)."""

    batches: int = 0
    dropped: int = 0  # batches not sent because the worker's channel was full
    packets: int = 0  # video packets seen
    sent_packets: int = 0  # of which handed to the worker to decode
    sent_bytes: int = 0
    cpu_seconds: float = 0.0  # event-loop thread time spent selecting and sending


class LiveSampler:
    def __init__(self, settings: LiveSamplingSettings, hub: Hub, send: Send) -> None:
        self.settings = settings
        self.hub = hub
        self.send = send
        self.stats = FeedStats()
        self.keyframes_only = Strategy.parse(settings.strategy).kind == "keyframes"
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def cameras(self) -> set[str]:
        """The cameras being sampled."""
        return set(self._tasks)

    def selects(self, camera: Camera) -> bool:
        s = self.settings
        if s.mode == "off":
            return False
        if camera.recording is RecordingPolicy.CONTINUOUS and not s.recorded:
            return False
        if s.tags and not set(s.tags) & set(camera.tags):
            return False
        return not s.classes or camera.camera_class in s.classes

    def apply(self, cameras: Iterable[Camera]) -> None:
        """Sample exactly the selected ones of ``cameras`` (the catalog, as it is now)."""
        wanted = {camera.id for camera in cameras if self.selects(camera)}
        for camera_id in list(self._tasks):
            if camera_id not in wanted:
                self._tasks.pop(camera_id).cancel()
                self.send(Forget(camera_id))
        loop = asyncio.get_running_loop()
        for camera_id in sorted(wanted):
            task = self._tasks.get(camera_id)
            if task is not None and not task.done():
                continue
            if task is not None and not task.cancelled() and task.exception() is not None:
                log.error("camera %s: live sampling failed; restarted", camera_id,
                          exc_info=task.exception())  # fmt: skip
            self._tasks[camera_id] = loop.create_task(
                self._run(camera_id), name=f"analytics sample {camera_id}"
            )

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _stream(self, camera_id: str) -> CameraStream | None:
        if self.settings.stream == "sub" and (sub := self.hub.find(camera_id, SUB)) is not None:
            return sub
        return self.hub.find(camera_id, MAIN)

    async def _run(self, camera_id: str) -> None:
        s = self.settings
        continuous = s.mode == "continuous"
        if not continuous:  # spread the windows of many cameras over the period
            await asyncio.sleep(random.uniform(0.0, s.every))
        while True:
            began = time.monotonic()
            if not await self.sample(camera_id, None if continuous else s.window):
                await asyncio.sleep(NO_STREAM_RETRY)
            elif not continuous:
                await asyncio.sleep(max(0.0, s.every - (time.monotonic() - began)))

    async def sample(self, camera_id: str, seconds: float | None) -> bool:
        """Sample the camera for ``seconds`` (None: until its stream closes); False if the
        hub has no stream for it."""
        stream = self._stream(camera_id)
        if stream is None:
            return False
        await self._watch(camera_id, stream, seconds)
        return True

    async def _watch(self, camera_id: str, stream: CameraStream, seconds: float | None) -> None:
        """Sample ``stream`` for ``seconds`` (None: until it closes)."""
        subscriber = stream.subscribe("analytics")
        self.send(LiveStart(camera_id, time.time()))
        deadline = None if seconds is None else time.monotonic() + seconds
        items: list[Packet | float] = []
        need_keyframe = False
        try:
            while deadline is None or time.monotonic() < deadline:
                await asyncio.sleep(BATCH_SECONDS)
                started = time.thread_time()
                need_keyframe = self._take(subscriber, items, need_keyframe)
                if self.send(LiveBatch(camera_id, time.time(), tuple(items))):
                    self.stats.batches += 1
                    self.stats.sent_packets += sum(not isinstance(i, float) for i in items)
                    self.stats.sent_bytes += sum(
                        len(i.data) for i in items if isinstance(i, Packet)
                    )
                    items = []
                else:
                    self.stats.dropped += 1
                    items = [i if isinstance(i, float) else i.arrival for i in items]
                    del items[:-MAX_CARRIED]
                    need_keyframe = not self.keyframes_only
                self.stats.cpu_seconds += time.thread_time() - started
                if subscriber.closed and subscriber.queued == 0:
                    break  # the stream was removed or replaced: look it up again
        finally:
            subscriber.close()
            with contextlib.suppress(Exception):  # cancelled during shutdown: best effort
                self.send(LivePause(camera_id, time.time()))

    def _take(
        self, subscriber: Subscriber, items: list[Packet | float], need_keyframe: bool
    ) -> bool:
        """Move the queued packets into ``items``; returns whether a keyframe is still due."""
        keyframes_only = self.keyframes_only
        while (packet := subscriber.get_nowait()) is not None:
            if packet.kind != "video":
                continue
            self.stats.packets += 1
            if packet.keyframe:
                need_keyframe = False
            if need_keyframe or (keyframes_only and not packet.keyframe):
                items.append(packet.arrival)
            else:
                items.append(packet)
        return need_keyframe
