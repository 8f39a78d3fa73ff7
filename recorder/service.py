"""The recorder as the gateway runs it: one hub subscriber and writer per recorded camera.

Per camera, a task takes the hub's packets in batches (one thread hop per batch, not per
packet) and hands them to its :class:`~recorder.writer.CameraWriter` in a shared pool of
writer threads; a camera's batches run one after the other, so its writer needs no lock.
What the writer reports — closed segments, breaks, resumptions — goes to the index. The
subscriber's queue is large (``queue_packets``) so that a slow disk costs latency, not
footage; if it still overflows, the hub skips to the next keyframe and the index shows a
``packets_lost`` gap.

A maintenance task reconciles the whole archive once, then runs retention every
``retention_interval`` and at once when a writer finds the disk full. Reconcile, retention
and exports use their own threads, so they never delay a writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import sqlite3
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.bus import Bus
from gateway.bus import Event as BusEvent
from gateway.catalog.models import Camera, CameraClass, RecordingPolicy
from gateway.errors import InvalidInput, StreamClosed
from gateway.eventlog import EventLog
from gateway.hub.hub import MAIN, Hub
from gateway.hub.packet import Packet
from gateway.hub.stream import CameraStream
from gateway.hub.subscriber import Subscriber
from gateway.settings import RecorderSettings
from recorder import export, layout
from recorder.errors import DiskFull
from recorder.index import Gap, GapReason, Hold, Index, Segment
from recorder.reconcile import reconcile
from recorder.retention import DiskState, DiskStatus, Pass, Policy, Retention
from recorder.writer import CameraWriter, Event, Resumed, Stopped, WriterConfig

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    state: str  # recording | waiting (for the camera or a keyframe) | disk_full | error
    segment_start: float | None  # the segment being written
    segments: int
    received: int  # packets the hub delivered to the recorder
    packets: int  # of those, written
    bytes: int
    skipped: int  # of those, not written: before a keyframe, or while the disk was full
    dropped: int  # packets the hub discarded because the recorder fell behind
    errors: int
    last_error: str
    audio_note: str


@dataclass(frozen=True, slots=True)
class Timeline:
    segments: list[Segment]
    gaps: list[Gap]
    holds: list[Hold]
    recording: CameraStatus | None


@dataclass(frozen=True, slots=True)
class ExportFile:
    path: Path
    plan: export.Plan


class CameraRecording:
    """One camera being recorded."""

    def __init__(self, recorder: Recorder, camera_id: str, stream: CameraStream) -> None:
        self.recorder = recorder
        self.camera_id = camera_id
        self.stream = stream
        settings = recorder.settings
        self.writer = CameraWriter(recorder.root, camera_id, recorder.writer_config)
        self.subscriber: Subscriber = stream.subscribe(
            "recorder", max_packets=settings.queue_packets
        )
        self._stop_reason: GapReason | None = None
        self._last_stop: GapReason | None = None
        self._backlog: list[Event] = []  # index writes that failed (disk full), in order
        self._disk_full_event: str | None = None  # its id in the event log while it lasts
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"record {camera_id}")

    def status(self) -> CameraStatus:
        stats = self.writer.stats
        current = self.writer.current
        if current is not None:
            state = "recording"
        elif self._last_stop is GapReason.DISK_FULL:
            state = "disk_full"
        elif self._last_stop is GapReason.WRITE_ERROR:
            state = "error"
        else:
            state = "waiting"
        return CameraStatus(
            camera_id=self.camera_id,
            state=state,
            segment_start=current.start if current is not None else None,
            segments=stats.segments,
            received=self.subscriber.delivered,
            packets=stats.packets,
            bytes=stats.bytes,
            skipped=stats.skipped,
            dropped=self.subscriber.dropped,
            errors=stats.errors,
            last_error=stats.last_error,
            audio_note=stats.audio_note,
        )

    async def stop(self, reason: GapReason) -> None:
        """Write what is queued, close the segment, open a gap for ``reason``."""
        self._stop_reason = reason
        self.subscriber.close("recording stopped")
        await self.task

    async def _run(self) -> None:
        settings = self.recorder.settings
        tick = min(1.0, settings.gap_seconds / 2)
        subscriber = self.subscriber
        while True:
            batch = _drain(subscriber)
            if not batch:
                try:
                    first = await asyncio.wait_for(subscriber.get(), timeout=tick)
                except TimeoutError:
                    await self._apply(self.writer.silence, time.time())
                    continue
                except StreamClosed:
                    break
                batch = [first, *_drain(subscriber)]
            await self._apply(self.writer.write, batch, time.time())
            if settings.batch_seconds:
                await asyncio.sleep(settings.batch_seconds)  # packets gather: fewer hops
        reason = self._stop_reason or GapReason.CAMERA_OFFLINE
        await self._apply(self.writer.close, reason)

    async def _apply(self, work: Callable[..., list[Event]], *args: object) -> None:
        loop = asyncio.get_running_loop()
        try:
            events = await loop.run_in_executor(self.recorder.writers, work, *args)
            await self._record([*self._backlog, *events])
        except Exception:  # a bug: log it and record on (reconcile indexes any lost segment)
            log.exception("camera %s: recorder error", self.camera_id)

    async def _record(self, events: list[Event]) -> None:
        index = self.recorder.index
        self._backlog = []
        for i, event in enumerate(events):
            try:
                if isinstance(event, Segment):
                    await index.add_segment(event)
                    await self.recorder.announce(event)
                elif isinstance(event, Resumed):
                    if self._disk_full_event is not None:
                        await self.recorder.report_end(self._disk_full_event, event.at)
                        self._disk_full_event = None
                    self._last_stop = None
                    await index.close_gap(self.camera_id, event.at)
                else:
                    await self._stopped(event)
            except sqlite3.Error as exc:  # the index's disk is full too: retry later
                log.error("camera %s: cannot update the recordings index: %s", self.camera_id, exc)
                self._backlog = events[i:]
                self.recorder.disk_pressure()
                return

    async def _stopped(self, event: Stopped) -> None:
        if event.reason is GapReason.DISK_FULL:
            if self._last_stop is not GapReason.DISK_FULL:  # once, not at every retry
                log.error("camera %s: recording interrupted, the disk is full", self.camera_id)
                # An event for operators, open until recording resumes.
                self._disk_full_event = await self.recorder.report(
                    "disk_full", self.camera_id, event.at, {"root": str(self.recorder.root)}
                )
            self.recorder.disk_pressure()
        self._last_stop = event.reason
        await self.recorder.index.open_gap(self.camera_id, event.at, event.reason)


def _drain(subscriber: Subscriber) -> list[Packet]:
    batch = []
    while (packet := subscriber.get_nowait()) is not None:
        batch.append(packet)
    return batch


class Recorder:
    """Create with the gateway, ``await start()`` before cameras are applied, ``close()`` last."""

    def __init__(
        self,
        settings: RecorderSettings,
        data_dir: Path,
        hub: Hub,
        bus: Bus | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.bus = bus
        self.events = events
        self.data_dir = data_dir
        self.root = settings.root or data_dir / "recordings"
        self.exports_dir = data_dir / "exports"
        self.started_at = time.time()
        self.writer_config = WriterConfig(
            segment_seconds=settings.segment_seconds,
            fragment_seconds=settings.fragment_seconds,
            gap_seconds=settings.gap_seconds,
            sync_interval=settings.sync_interval,
            disk_full_retry=settings.disk_full_retry,
        )
        self.writers = ThreadPoolExecutor(settings.writer_threads, thread_name_prefix="recorder")
        # Reconcile, retention and exports: slow file work that must not delay a writer.
        self.io = ThreadPoolExecutor(2, thread_name_prefix="recorder-io")
        self.policy = Policy(
            days_by_class={c: settings.retention_days.of(c) for c in CameraClass},
            days_by_camera=dict(settings.camera_retention_days),
            low_water_bytes=int(settings.low_water),
            low_water_percent=settings.low_water_percent,
            full_reserve_bytes=int(settings.full_reserve),
            floor_seconds=settings.floor_hours * 3600,
        )
        self._index: Index | None = None
        self._retention: Retention | None = None
        self._reading: Counter[str] = Counter()  # segment paths exports are reading
        self._recordings: dict[str, CameraRecording] = {}
        self._classes: dict[str, CameraClass] = {}
        self._pressure = asyncio.Event()
        self._export_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._maintenance: asyncio.Task[None] | None = None

    @property
    def index(self) -> Index:
        if self._index is None:
            raise RuntimeError("the recorder is not started")
        return self._index

    @property
    def retention(self) -> Retention:
        if self._retention is None:
            raise RuntimeError("the recorder is not started")
        return self._retention

    async def start(self) -> None:
        """Open the index and reconcile it with the disk, before any camera records."""
        self.started_at = time.time()
        self._index = await Index.open(self.data_dir / "recordings.sqlite3")
        self._retention = Retention(
            self._index, self.root, self.policy, self.io, lambda: set(self._reading)
        )
        await self._in_io(_make_folders, self.root, self.exports_dir)
        await reconcile(self._index, self.root, self.started_at, self.io, full=False)
        self._maintenance = asyncio.get_running_loop().create_task(
            self._maintain(), name="recorder maintenance"
        )

    async def close(self) -> None:
        """Finish every open segment; gaps from now on are the gateway's."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        recordings = list(self._recordings.values())
        self._recordings.clear()
        await asyncio.gather(*(r.stop(GapReason.GATEWAY_DOWN) for r in recordings))
        if self._index is not None:
            now = time.time()
            for recording in recordings:  # a camera offline at shutdown: the rest is ours
                with contextlib.suppress(sqlite3.Error):
                    await self._index.switch_open_gap(
                        recording.camera_id, now, GapReason.GATEWAY_DOWN
                    )
            await self._index.close()
        # Every recording has stopped: no writer work is left to wait for.
        self.writers.shutdown(wait=False)
        self.io.shutdown(wait=False, cancel_futures=True)

    # --- cameras -------------------------------------------------------------------------

    async def apply(self, camera: Camera) -> None:
        """Record ``camera`` or not, per its policy; idempotent."""
        self._classes[camera.id] = camera.camera_class
        wanted = self.settings.enabled and camera.recording is RecordingPolicy.CONTINUOUS
        current = self._recordings.get(camera.id)
        stream = self.hub.find(camera.id, MAIN)
        if current is not None and (not wanted or current.stream is not stream):
            del self._recordings[camera.id]
            await current.stop(GapReason.RECORDING_OFF)
            current = None
        if wanted and current is None and stream is not None:
            self._recordings[camera.id] = CameraRecording(self, camera.id, stream)
            log.info("camera %s: recording to %s", camera.id, self.root / camera.id)
        elif not wanted:
            await self.index.switch_open_gap(camera.id, time.time(), GapReason.RECORDING_OFF)

    async def remove(self, camera_id: str) -> CameraStatus | None:
        """The camera left the catalog: stop recording (its footage stays, under retention).

        Returns the recording's final figures, if it was being recorded."""
        self._classes.pop(camera_id, None)
        recording = self._recordings.pop(camera_id, None)
        if recording is None:
            return None
        await recording.stop(GapReason.RECORDING_OFF)
        return recording.status()

    def recording(self, camera_id: str) -> CameraStatus | None:
        recording = self._recordings.get(camera_id)
        return recording.status() if recording is not None else None

    def statuses(self) -> list[CameraStatus]:
        return [r.status() for r in self._recordings.values()]

    async def disk(self) -> DiskStatus:
        return await self.retention.measure()

    async def run_retention(self) -> Pass:
        """One retention pass now (the maintenance task runs them on its own too)."""
        return await self.retention.run(dict(self._classes))

    async def announce(self, segment: Segment) -> None:
        """Tell the bus a segment is closed (the analytics worker scans it). Transient: a
        segment closed while nobody listens is found again through the index."""
        if self.bus is None:
            return
        try:
            await self.bus.publish(
                BusEvent(
                    type="segment_closed",
                    source="recorder",
                    camera=segment.camera_id,
                    start=segment.start,
                    end=segment.end,
                    data={
                        "camera": segment.camera_id,
                        "path": segment.path,
                        "start": segment.start,
                        "end": segment.end,
                    },
                )
            )
        except Exception as exc:  # the bus (Redis) is down: recording goes on regardless
            log.warning("camera %s: cannot announce a closed segment: %s", segment.camera_id, exc)

    async def report(
        self, kind: str, camera_id: str, at: float, data: dict[str, object]
    ) -> str | None:
        """Open an event in the event log (persisted, then published); its id, if logged."""
        if self.events is None:
            return None
        try:
            record = await self.events.record(
                BusEvent(type=kind, source="recorder", camera=camera_id, start=at, data=data)
            )
        except Exception as exc:  # the event log shares the full disk: the status still says it
            log.warning("camera %s: cannot log %s: %s", camera_id, kind, exc)
            return None
        return record.id

    async def report_end(self, event_id: str, at: float) -> None:
        if self.events is None:
            return
        try:
            await self.events.update(event_id, end=at)
        except Exception as exc:
            log.warning("cannot close event %s: %s", event_id, exc)

    def disk_pressure(self) -> None:
        """A writer (or the index) hit a full disk: run retention now, floor or not."""
        self.retention.writer_full()
        self._pressure.set()

    async def metrics(self) -> str:
        """Prometheus text: the disk and every recorded camera (served on its own path,
        ready to be appended to the gateway's ``/metrics``)."""
        disk = await self.disk()
        lines: list[str] = []

        def family(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
            lines.extend((f"# HELP {name} {text}", f"# TYPE {name} {kind}"))
            lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

        family(
            "sharpeyes_recorder_disk_free_bytes",
            "gauge",
            "free space for recordings",
            [("", disk.free)],
        )
        family(
            "sharpeyes_recorder_disk_low_water_bytes",
            "gauge",
            "free space retention keeps",
            [("", disk.low_water)],
        )
        family(
            "sharpeyes_recorder_disk_state",
            "gauge",
            "1 for the disk's state: ok, low, full",
            [(f'{{state="{s.value}"}}', float(disk.state is s)) for s in DiskState],
        )
        family(
            "sharpeyes_recorder_evicted_segments_total",
            "counter",
            "segments deleted for space",
            [("", disk.evicted_segments)],
        )
        family(
            "sharpeyes_recorder_expired_segments_total",
            "counter",
            "segments deleted at the end of their retention",
            [("", disk.expired_segments)],
        )
        cameras = self.statuses()
        per_camera = (
            (
                "recording",
                "gauge",
                "1 while a segment is being written",
                lambda c: float(c.state == "recording"),
            ),
            ("segments_total", "counter", "segments closed", lambda c: c.segments),
            ("packets_total", "counter", "packets written", lambda c: c.packets),
            (
                "dropped_total",
                "counter",
                "packets the hub dropped for the recorder",
                lambda c: c.dropped,
            ),
            ("errors_total", "counter", "write failures (disk full included)", lambda c: c.errors),
        )
        for suffix, kind, text, value in per_camera:
            family(
                f"sharpeyes_recorder_camera_{suffix}",
                kind,
                text,
                [(f'{{camera="{c.camera_id}"}}', value(c)) for c in cameras],
            )
        return "\n".join(lines) + "\n"

    # --- queries -------------------------------------------------------------------------

    async def timeline(self, camera_id: str, start: float, end: float) -> Timeline:
        _check_range(start, end)
        segments = await self.index.segments(camera_id, start, end)
        gaps = await self.index.gaps(camera_id, start, end)
        holds = [h for h in await self.index.holds(camera_id) if h.start < end and h.end > start]
        return Timeline(segments, gaps, holds, self.recording(camera_id))

    def path_of(self, segment: Segment) -> Path:
        return self.root / segment.path

    async def export(self, camera_id: str, start: float, end: float) -> ExportFile:
        """Build (or find, for a repeated request) the export file of a range."""
        _check_range(start, end)
        if end - start > self.settings.export_max_hours * 3600:
            raise InvalidInput(
                f"an export covers at most {self.settings.export_max_hours:g} hours",
                field="end",
            )
        segments = await self.index.segments(camera_id, start, end)
        plan = export.plan(camera_id, segments, start, end)
        key = hashlib.sha256(
            repr(
                (camera_id, plan.start, plan.end, [(s.id, s.bytes) for s in plan.segments])
            ).encode()
        ).hexdigest()[:20]
        out = self.exports_dir / (
            f"{camera_id}_{layout.stamp(plan.start)}_{layout.stamp(plan.end)}_{key}.mp4"
        )
        lock = self._export_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if out.exists():  # the same request again (a player's range requests)
                return ExportFile(out, plan)
            with self._reading_segments(s.path for s in plan.segments):
                await self._in_io(export.write, plan, self.root, out)
        return ExportFile(out, plan)

    # --- holds ---------------------------------------------------------------------------

    async def add_hold(self, camera_id: str, start: float, end: float, reason: str) -> Hold:
        _check_range(start, end)
        if not reason.strip():
            raise InvalidInput("a hold needs a reason (case number, request)", field="reason")
        hold = await self.index.add_hold(Hold(camera_id, start, end, reason.strip(), time.time()))
        log.info(
            "camera %s: hold %d placed on %s – %s (%s)",
            camera_id,
            hold.id,
            layout.iso(start),
            layout.iso(end),
            hold.reason,
        )
        return hold

    async def holds(self, camera_id: str, *, include_released: bool = False) -> list[Hold]:
        return await self.index.holds(camera_id, include_released=include_released)

    async def release_hold(self, camera_id: str, hold_id: int) -> Hold:
        hold = await self.index.release_hold(camera_id, hold_id, time.time())
        log.info("camera %s: hold %d released", camera_id, hold_id)
        return hold

    # --- internals -----------------------------------------------------------------------

    async def _in_io(self, work: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.io, work, *args)
        except OSError as exc:
            if exc.errno in _DISK_FULL_ERRNOS:
                raise DiskFull(f"no room on disk for the export: {exc.strerror}") from exc
            raise

    @contextlib.contextmanager
    def _reading_segments(self, paths: Iterable[str]) -> Iterator[None]:
        held = list(paths)
        self._reading.update(held)
        try:
            yield
        finally:
            self._reading.subtract(held)
            self._reading += Counter()  # drop the zero counts

    async def _maintain(self) -> None:
        await self._guard(
            reconcile(self.index, self.root, self.started_at, self.io, full=True), "reconcile"
        )
        interval = self.settings.retention_interval
        while True:
            await self._guard(self.run_retention(), "retention")
            await self._guard(
                self._in_io(_expire_exports, self.exports_dir, self.settings.export_keep_seconds),
                "export cleanup",
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pressure.wait(), interval)
            self._pressure.clear()

    async def _guard(self, work: Awaitable[object], what: str) -> None:
        try:
            await work
        except Exception as exc:  # never let housekeeping die: log and try again next time
            log.exception("recorder %s failed", what)
            self.retention.status.last_error = f"{what}: {exc}"


def _make_folders(*folders: Path) -> None:
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


def _check_range(start: float, end: float) -> None:
    if not end > start:
        raise InvalidInput("end must be after start", field="end")


def _expire_exports(folder: Path, keep_seconds: float) -> None:
    """Built exports go ``keep_seconds`` after their last use; stray partial ones after a day."""
    now = time.time()
    for pattern, keep in (("*.mp4", keep_seconds), ("*.mp4.part", 86400.0)):
        for path in folder.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < now - keep:
                    path.unlink()
