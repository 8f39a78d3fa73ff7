"""Analytics in the gateway process: its worker processes, and all that joins them to the
rest of the gateway.

- **Workers.** ``analytics.workers`` processes (:mod:`analytics.worker`, started with
  ``spawn``: a fork of a process with threads and an event loop is unsafe), each with a
  bounded job queue; a camera always goes to the same one (CRC-32 of its id), which keeps
  its analysis. One that dies is restarted; the recordings it had are reported failed, the
  events it had open end (``data.interrupted``).
- **In.** Live samples (:mod:`analytics.live`, cameras selected from the catalog every
  ``RECONCILE_SECONDS``) are sent without waiting and dropped when the queue is full;
  recordings — the recorder's ``segment_closed`` bus events (``data``: ``path``, relative
  to the recordings folder or absolute, ``camera``, ``start``, ``end``) and
  ``analytics.watch_dir`` (:mod:`analytics.watch`) — wait for room, off the event loop. A
  camera has one analysis: recordings of a camera being sampled live are skipped.
- **Out.** Each event found goes into the event log, which publishes it on the bus: once
  when it begins (``end`` None), once more when it ends, as the same event (same id). The
  diagnosis is read back from the log (:mod:`analytics.report`).

Events still open when the gateway stops end with the analyses (``Shutdown``). Those a
crash left open are ended when the gateway starts again, at that time, with
``data.interrupted`` true: whether the fault lasted all that while is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from analytics.config import AnalysisConfig
from analytics.detectors.signal_loss import SignalLossThresholds
from analytics.events import Event as Ended
from analytics.events import EventType, Onset
from analytics.live import LiveSampler
from analytics.messages import (
    Analysed,
    Found,
    Job,
    LiveJob,
    Origin,
    ReferenceChanged,
    Relearn,
    Result,
    Segment,
    SegmentDone,
    Shutdown,
    Stopped,
)
from analytics.reference import ReferenceStore
from analytics.report import (
    FAULT_ORDER,
    SOURCE,
    Diagnosis,
    RegionQuality,
    active_faults,
    diagnose,
    region_quality,
)
from analytics.sampler import Strategy
from analytics.watch import WatchFolder
from analytics.worker import WorkerConfig
from analytics.worker import main as worker_main
from gateway.bus import Bus, Event
from gateway.catalog.models import Camera
from gateway.catalog.store import CatalogStore
from gateway.eventlog import EventLog
from gateway.hub.hub import MAIN, Hub
from gateway.hub.status import State
from gateway.settings import Settings

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 30.0
SUPERVISE_SECONDS = 2.0
STOP_TIMEOUT = 20.0  # a worker ends its analyses and reports them within this
PRUNE_SECONDS = 3600.0
BUS_RETRY_SECONDS = 5.0
SEGMENT_CLOSED = "segment_closed"

Faults = dict[str, set[EventType]]
MetricSample = tuple[
    str, str, str, dict[str, str], float
]  # Prometheus: name, type, help, labels, value


@dataclass(slots=True)
class SegmentStats:
    analysed: int = 0
    failed: int = 0
    skipped: int = 0  # of cameras sampled live
    seconds: float = 0.0  # of video
    cpu_seconds: float = 0.0  # in the workers


@dataclass(slots=True)
class _Worker:
    """A worker process and its two queues. Each worker has a results queue of its own: a
    process that dies while writing to a queue may leave it locked for every other writer."""

    index: int
    process: SpawnProcess
    jobs: Queue[Job]
    results: Queue[Result]
    reader: threading.Thread | None = None
    stop_reading: threading.Event = field(default_factory=threading.Event)
    in_flight: dict[str, Segment] = field(default_factory=dict)  # path → job
    cameras: set[str] = field(default_factory=set)  # cameras it was given
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def discard(self) -> None:
        """Stop reading and let go of the queues (the process has exited)."""
        self.stop_reading.set()
        for q in (self.jobs, self.results):
            q.cancel_join_thread()  # nobody will empty them
            q.close()


class Analytics:
    """Create with the gateway; ``await start()`` once the hub has the cameras, ``await
    close()`` before the hub and the event log close."""

    def __init__(
        self,
        settings: Settings,
        store: CatalogStore,
        hub: Hub,
        events: EventLog,
        bus: Bus,
        *,
        recordings: Path,
    ) -> None:
        self.settings = settings.analytics
        self.log_level = settings.log_level
        self.store = store
        self.hub = hub
        self.events = events
        self.bus = bus
        self.recordings = recordings
        self.folder = Path(settings.data_dir) / "analytics"
        self.references = ReferenceStore(self.folder / "references")
        self.sampler = LiveSampler(self.settings.live, hub, self._send_now)
        self.segments = SegmentStats()
        self.seen: dict[str, tuple[float, Origin]] = {}  # camera → analysed up to, from
        self.watch = (
            WatchFolder(
                self.settings.watch_dir, self.folder / "watch.json", self.settings.settle_seconds
            )
            if self.settings.watch_dir is not None
            else None
        )
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._inbox: asyncio.Queue[Result] = asyncio.Queue()
        self._putter = ThreadPoolExecutor(1, thread_name_prefix="analytics-put")
        self._open: dict[tuple[str, str], tuple[str, float]] = {}  # (camera, type) → id, start
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._bus_cursor: str | None = None  # the last segment_closed event seen

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    # --- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        await self._end_interrupted(time.time())
        self._started = True
        if not self.enabled:
            return
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        self._workers = [self._spawn(index) for index in range(self.settings.workers)]
        background: list[Coroutine[Any, Any, None]] = [
            self._consume(),
            self._supervise(),
            self._repeat("camera selection", self._reconcile, RECONCILE_SECONDS),
            self._repeat("event pruning", self._prune, PRUNE_SECONDS),
            self._repeat("bus subscription", self._segments_from_bus, BUS_RETRY_SECONDS),
        ]
        if self.watch is not None:
            watch = self.watch
            interval = self.settings.watch_interval
            background.append(
                self._repeat("watch folder scan", lambda: self._scan(watch), interval)
            )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(work) for work in background]
        log.info(
            "analytics: %d worker(s); live sampling %s; recordings from the bus%s",
            len(self._workers),
            self.settings.live.mode,
            f" and {self.settings.watch_dir}" if self.watch is not None else "",
        )

    async def close(self) -> None:
        """Stop sampling, let every worker end its analyses (their open events end and are
        logged), then stop the workers."""
        consumer = self._tasks[0] if self._tasks else None
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks[1:], return_exceptions=True)
        await self.sampler.close()
        await asyncio.gather(*(self._stop(worker) for worker in self._workers))
        if consumer is not None:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        self._workers = []
        self._putter.shutdown(wait=False, cancel_futures=True)
        if self._started:  # else the event log may not be open: a gateway that failed to start
            await self._end_interrupted(time.time())  # what a dead worker left open

    def _spawn(self, index: int) -> _Worker:
        s = self.settings
        recording = AnalysisConfig(strategy=Strategy.parse(s.strategy), width=s.width)
        live_loss = SignalLossThresholds(max_gap=s.live.signal_loss_after)
        live = replace(
            recording,
            strategy=Strategy.parse(s.live.strategy),
            detectors=replace(recording.detectors, signal_loss=live_loss),
        )
        config = WorkerConfig(index, live, recording, self.references.folder, self.log_level)
        jobs: Queue[Job] = self._context.Queue(s.queue_batches)
        results: Queue[Result] = self._context.Queue()
        process = self._context.Process(
            target=worker_main,
            args=(config, jobs, results),
            name=f"sharpeyes-analytics-{index}",
            daemon=True,
        )
        process.start()
        worker = _Worker(index, process, jobs, results)
        worker.reader = threading.Thread(
            target=self._read_results,
            args=(asyncio.get_running_loop(), worker),
            name=f"analytics-results-{index}",
            daemon=True,
        )
        worker.reader.start()
        return worker

    async def _stop(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            await self._send(worker, Shutdown())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.stopped.wait(), STOP_TIMEOUT)
        await asyncio.to_thread(worker.process.join, 5.0)
        if worker.process.is_alive():
            log.error("analytics worker %d did not stop; killed", worker.index)
            worker.process.kill()
            await asyncio.to_thread(worker.process.join, 5.0)
        worker.discard()
        if worker.reader is not None:
            await asyncio.to_thread(worker.reader.join)

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_SECONDS)
            for i, worker in enumerate(self._workers):
                if worker.process.is_alive() or worker.stopped.is_set():
                    continue
                log.error(
                    "analytics worker %d died (exit code %s); restarting it",
                    worker.index,
                    worker.process.exitcode,
                )
                worker.discard()
                self._workers[i] = self._spawn(worker.index)
                for job in worker.in_flight.values():
                    self._segment_done(
                        SegmentDone(job.camera, job.path, 0.0, 0.0, "worker_died", "")
                    )
                await self._end_interrupted(time.time(), worker.cameras)

    # --- what the API and the metrics read -----------------------------------------------

    async def diagnosis(self, camera: str) -> Diagnosis:
        return diagnose(camera, await self.events.latest(camera, source=SOURCE))

    def reference_time(self, camera: str) -> float | None:
        """When the camera's stored scene reference was learned (blocking: a stat)."""
        try:
            return self.references.path(camera).stat().st_mtime
        except FileNotFoundError:
            return None

    async def quality(self, cameras: list[Camera]) -> tuple[list[RegionQuality], Faults]:
        """Every region's 完好率 and online rate, and every camera's active faults."""
        faults = active_faults(await self.events.open_events(source=SOURCE))
        online = set()
        for camera in cameras:
            stream = self.hub.find(camera.id, MAIN)
            if stream is not None and stream.status.state == State.ONLINE:
                online.add(camera.id)
        return region_quality(cameras, online, faults), faults

    async def metric_samples(self, cameras: list[Camera]) -> list[MetricSample]:
        """Prometheus samples: (name, type, help, labels, value)."""
        regions, faults = await self.quality(cameras)
        out: list[MetricSample] = []

        def gauge(name: str, help_: str, labels: dict[str, str], value: float) -> None:
            out.append((f"sharpeyes_{name}", "gauge", help_, labels, value))

        for camera in cameras:
            active = faults.get(camera.id, set())
            if self.enabled or active:  # else nothing is known about its picture
                for kind in FAULT_ORDER:
                    labels = {"camera": camera.id, "region": camera.region, "fault": kind}
                    gauge(
                        "camera_fault", "1 while the picture has this fault", labels, kind in active
                    )
        for region in regions:
            labels = {"region": region.code}
            intact = "完好率: share of the region's online cameras whose picture has no fault"
            gauge("region_intact_ratio", intact, labels, region.intact_ratio)
            faulty = "online cameras whose picture has a fault"
            gauge("region_faulty_cameras", faulty, labels, region.online - region.intact)
        if self.enabled:
            feed, segments = self.sampler.stats, self.segments
            for name, help_, value in (
                ("live_batches_total", "live sample batches sent to a worker", feed.batches),
                (
                    "live_dropped_total",
                    "live batches not sent: a worker's queue full",
                    feed.dropped,
                ),
                ("live_sent_bytes_total", "video bytes sent to the workers", feed.sent_bytes),
                (
                    "live_feed_cpu_seconds_total",
                    "event-loop CPU of live sampling",
                    feed.cpu_seconds,
                ),
                ("segments_analysed_total", "recordings analysed", segments.analysed),
                ("segments_failed_total", "recordings that could not be analysed", segments.failed),
                ("segments_skipped_total", "recordings of cameras sampled live", segments.skipped),
                ("segment_video_seconds_total", "seconds of recordings analysed", segments.seconds),
                ("segment_cpu_seconds_total", "worker CPU on recordings", segments.cpu_seconds),
            ):
                out.append((f"sharpeyes_analytics_{name}", "counter", help_, {}, value))
        return out

    # --- jobs ----------------------------------------------------------------------------

    def _worker_of(self, camera: str) -> _Worker:
        worker = self._workers[zlib.crc32(camera.encode()) % len(self._workers)]
        worker.cameras.add(camera)
        return worker

    def _send_now(self, job: LiveJob) -> bool:
        """Live samples: never wait; False if the worker's queue is full."""
        if not self._workers:
            return False
        try:
            self._worker_of(job.camera).jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    async def _send(self, worker: _Worker, job: Job) -> bool:
        """Jobs that must not be lost: wait for room (in a thread); False if the worker
        died meanwhile."""

        def put() -> bool:
            while worker.process.is_alive():
                try:
                    worker.jobs.put(job, timeout=1.0)
                except queue.Full:
                    continue
                return True
            return False

        return await asyncio.get_running_loop().run_in_executor(self._putter, put)

    async def relearn(self, camera: str) -> None:
        """Forget the camera's scene reference; its next good stretch is the new one."""
        if self._workers:
            await self._send(self._worker_of(camera), Relearn(camera))
        else:
            await asyncio.to_thread(self.references.remove, camera)

    async def submit(self, job: Segment) -> None:
        """A closed recording to analyse (skipped for a camera sampled live)."""
        if job.camera in self.sampler.cameras:
            log.debug("recording %s skipped: camera %s is sampled live", job.path, job.camera)
            self.segments.skipped += 1
            if self.watch is not None:
                self.watch.done(job.path)
            return
        worker = self._worker_of(job.camera)
        worker.in_flight[job.path] = job
        if not await self._send(worker, job):
            self._segment_done(SegmentDone(job.camera, job.path, 0.0, 0.0, "worker_died", ""))

    async def _repeat(self, what: str, work: Callable[[], Awaitable[None]], period: float) -> None:
        """Run ``work`` now and every ``period`` seconds; a failure is logged, not fatal."""
        while True:
            try:
                await work()
            except Exception:
                log.exception("analytics: %s failed; again in %g s", what, period)
            await asyncio.sleep(period)

    async def _reconcile(self) -> None:
        self.sampler.apply(await self.store.all_cameras())

    async def _segments_from_bus(self) -> None:
        """Until cancelled; after a bus failure, resumes after the last event it saw."""
        async for event in self.bus.subscribe(types={SEGMENT_CLOSED}, after=self._bus_cursor):
            self._bus_cursor = event.id
            data = event.data
            camera = data.get("camera") or event.camera
            path = data.get("path")
            if not isinstance(camera, str) or not isinstance(path, str):
                log.warning("segment_closed event %s without camera and path; ignored", event.id)
                continue
            start, end = data.get("start", event.start), data.get("end", event.end)
            await self.submit(
                Segment(
                    camera,
                    str(self.recordings / path),  # an absolute path stays as it is
                    float(start) if start is not None else None,
                    float(end) if end is not None else None,
                )
            )

    async def _scan(self, watch: WatchFolder) -> None:
        for arrival in await asyncio.to_thread(watch.scan, time.time()):
            await self.submit(
                Segment(arrival.camera, str(arrival.path), arrival.start, arrival.end)
            )

    async def _prune(self) -> None:
        before = time.time() - self.settings.retention_days * 86_400
        removed = await self.events.prune(before, source=SOURCE)
        if removed:
            log.info("analytics: pruned %d event(s) older than the retention", removed)

    # --- results -------------------------------------------------------------------------

    def _read_results(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> None:
        """Thread: the blocking queue read, handed to the event loop one result at a time."""
        while not worker.stop_reading.is_set():
            try:
                result = worker.results.get(timeout=0.5)
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):  # the queue was closed under us
                return
            loop.call_soon_threadsafe(self._inbox.put_nowait, result)

    async def _consume(self) -> None:
        while True:
            result = await self._inbox.get()
            try:
                await self._handle(result)
            except Exception:  # one bad result must not stop the others
                log.exception("analytics: cannot handle %r", type(result).__name__)

    async def _handle(self, result: Result) -> None:
        if isinstance(result, Found):
            await self._found(result)
        elif isinstance(result, Analysed):
            self.seen[result.camera] = (result.t, result.origin)
        elif isinstance(result, SegmentDone):
            self._segment_done(result)
        elif isinstance(result, ReferenceChanged):
            what = "learned" if result.at is not None else "dropped; relearning"
            log.info("camera %s: scene reference %s", result.camera, what)
        elif isinstance(result, Stopped):
            next(w for w in self._workers if w.index == result.worker).stopped.set()

    def _segment_done(self, done: SegmentDone) -> None:
        for worker in self._workers:
            worker.in_flight.pop(done.path, None)
        if self.watch is not None:
            self.watch.done(done.path)
        stats = self.segments
        stats.seconds += done.seconds
        stats.cpu_seconds += done.cpu_seconds
        if done.error_code is None:
            stats.analysed += 1
        else:
            stats.failed += 1

    async def _found(self, found: Found) -> None:
        report = found.report
        camera = report.camera or ""
        key = (camera, str(report.type))
        data: dict[str, Any] = {"origin": found.origin}
        if found.segment is not None:
            data["segment"] = found.segment
        opened = self._open.get(key)
        if isinstance(report, Onset):
            if opened is not None:  # its worker restarted: the old one's end is unknown
                await self._interrupt(key, report.start)
            record = await self.events.record(
                Event(
                    type=str(report.type),
                    source=SOURCE,
                    camera=camera,
                    start=report.start,
                    score=round(report.score, 3),
                    data=data,
                    end=None,
                ),
                report.thumbnail,
            )
            self._open[key] = (record.id, report.start)
            return
        assert isinstance(report, Ended)
        score = round(report.score, 3)
        if opened is not None and opened[1] == report.start:
            del self._open[key]
            await self.events.update(
                opened[0], end=report.end, score=score, thumbnail=report.thumbnail
            )
            return
        await self.events.record(
            Event(
                type=str(report.type),
                source=SOURCE,
                camera=camera,
                start=report.start,
                end=report.end,
                score=score,
                data=data,
            ),
            report.thumbnail,
        )

    async def _interrupt(self, key: tuple[str, str], at: float) -> None:
        event_id, _ = self._open.pop(key)
        await self.events.update(event_id, end=at, data={"interrupted": True})

    async def _end_interrupted(self, at: float, cameras: set[str] | None = None) -> None:
        """End the open analytics events no analysis will end (of ``cameras``, or all)."""
        for record in await self.events.open_events(source=SOURCE):
            if cameras is None or record.camera in cameras:
                self._open.pop((record.camera or "", record.type), None)
                await self.events.update(
                    record.id, end=max(at, record.start), data={"interrupted": True}
                )
