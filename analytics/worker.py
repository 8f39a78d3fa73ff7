"""The analytics worker: a process beside the gateway that runs every analysis, so decoding
and OpenCV never compete with the gateway's event loop.

The gateway starts it (:mod:`analytics.service`) and sends it jobs (:mod:`analytics.messages`):
live cameras' sampled packets and closed recordings. Each camera has one
:class:`~analytics.analyze.Analysis` here, fed by one origin:

- **live**: the packets the gateway selected, timed by their arrival; ``LiveBatch.now``
  tells the wall clock, so a camera that falls silent is a ``signal_loss`` within
  ``signal_loss_after`` seconds. Between interval windows the analysis pauses, its open
  events stay open.
- **recording**: a camera's segments, one after the other, on the wall clock of their
  names. A segment that starts where the previous one ended continues the same analysis,
  so a fault that lasts an hour is one event, not sixty; one that does not (a gap, a
  restart) or a bad file ends the analysis, and the next segment starts a new one. When no
  next segment comes for twice the last one's length (and at least a minute), the open
  events end.

Events are reported when they begin and when they end (``Found``); the gateway logs and
publishes them. Each camera's scene reference is kept in a :class:`ReferenceStore`.
A file that cannot be analysed is logged with its error code and reported
(``SegmentDone``), and the worker goes on; so does it after an unexpected error in one
camera's analysis, which starts afresh.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.queues import Queue
from pathlib import Path

from analytics.analyze import Analysis
from analytics.config import AnalysisConfig
from analytics.errors import AnalysisError, MediaNotFound
from analytics.events import Report
from analytics.messages import (
    Analysed,
    Forget,
    Found,
    Job,
    LiveBatch,
    LivePause,
    LiveStart,
    Origin,
    ReferenceChanged,
    Relearn,
    Result,
    Segment,
    SegmentDone,
    Shutdown,
    Stopped,
)
from analytics.reference import Reference, ReferenceStore
from analytics.sampler import FileSource, PacketDecoder, Picture, Pulse, Sample
from gateway.hub.packet import CodecParams, Packet

log = logging.getLogger(__name__)

JOIN_SECONDS = 2.0  # a segment starting this close to the previous one's end continues it
IDLE_MIN_SECONDS = 60.0
HOUSEKEEPING_SECONDS = 1.0  # how often the worker checks its gateway and idle recordings


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    index: int
    live: AnalysisConfig
    recording: AnalysisConfig
    references: Path
    log_level: str = "info"
    progress_interval: float = 10.0  # seconds between Analysed reports per camera
    store_references: bool = True  # False: use the stored references, never replace them


class _Camera:
    """One camera's analysis in this worker."""

    def __init__(self, camera: str, origin: Origin, analysis: Analysis) -> None:
        self.camera = camera
        self.origin = origin
        self.analysis = analysis
        self.reference = analysis.diagnoser.reference
        self.decoder: PacketDecoder | None = None  # live, while sampling
        self.codec: CodecParams | None = None  # live: the decoder's codec object
        self.segment_end: float | None = None  # recording: where the last segment ended
        self.idle_after = math.inf  # recording: monotonic time the analysis ends by itself
        self.reported = -math.inf  # the latest Analysed sent


class Worker:
    """The worker's state and job handling; :func:`main` runs it in the worker process."""

    def __init__(self, config: WorkerConfig, emit: Callable[[Result], None]) -> None:
        self.config = config
        self.emit = emit
        self.references = ReferenceStore(config.references)
        self.cameras: dict[str, _Camera] = {}

    # --- the loop ------------------------------------------------------------------------

    def run(self, jobs: Queue[Job]) -> None:
        parent = os.getppid()
        due = time.monotonic() + HOUSEKEEPING_SECONDS
        while True:
            try:
                if not self.handle(jobs.get(timeout=HOUSEKEEPING_SECONDS)):
                    return
            except queue.Empty:
                pass
            now = time.monotonic()
            if now < due:  # however busy the queue, housekeeping comes round
                continue
            due = now + HOUSEKEEPING_SECONDS
            if os.getppid() != parent:  # the gateway died without telling: stop too
                log.warning("analytics worker %d: the gateway is gone", self.config.index)
                return
            self.sweep(now)

    def handle(self, job: Job) -> bool:
        """Do one job; False once the worker must stop."""
        if isinstance(job, Shutdown):
            for camera in list(self.cameras):
                self._end(camera)
            self.emit(Stopped(self.config.index))
            return False
        camera = job.camera
        try:
            if isinstance(job, LiveBatch):
                self._live_batch(job)
            elif isinstance(job, LiveStart):
                state = self._state(camera, "live")
                state.decoder = PacketDecoder(self.config.live.strategy, self.config.live.width)
                state.codec = None
                state.analysis.resume(job.now)
            elif isinstance(job, LivePause):
                if (paused := self.cameras.get(camera)) is not None:
                    paused.decoder = None
            elif isinstance(job, Segment):
                self._segment(job)
            elif isinstance(job, Forget):
                self._end(camera)
            elif isinstance(job, Relearn):
                self._relearn(camera)
        except Exception:  # a bug in one camera's analysis must not stop the others
            log.exception("camera %s: analysis failed; it starts afresh", camera)
            self.cameras.pop(camera, None)
        return True

    def sweep(self, now: float) -> None:
        """End the recording analyses whose next segment is overdue."""
        for state in list(self.cameras.values()):
            if state.origin == "recording" and now >= state.idle_after:
                self._end(state.camera)

    # --- per camera ----------------------------------------------------------------------

    def _state(self, camera: str, origin: Origin) -> _Camera:
        state = self.cameras.get(camera)
        if state is not None and state.origin != origin:
            self._end(camera)  # the gateway switched the camera's origin
            state = None
        if state is None:
            config = self.config.live if origin == "live" else self.config.recording
            reference = self.references.load(camera)
            analysis = Analysis(config, camera=camera, reference=reference, onsets=True)
            state = self.cameras[camera] = _Camera(camera, origin, analysis)
        return state

    def _end(self, camera: str) -> None:
        state = self.cameras.pop(camera, None)
        if state is not None:
            self._found(state, state.analysis.finish())

    def _feed(self, state: _Camera, sample: Sample, segment: str | None = None) -> None:
        self._found(state, state.analysis.feed(sample), segment)
        if not isinstance(sample, Picture):
            return
        reference = state.analysis.diagnoser.reference
        if reference is not state.reference:
            state.reference = reference
            if reference is not None:
                self._learned(state.camera, reference)
        if sample.t - state.reported >= self.config.progress_interval:
            state.reported = sample.t
            self.emit(Analysed(state.camera, sample.t, state.origin))

    def _found(self, state: _Camera, reports: Sequence[Report], segment: str | None = None) -> None:
        for report in reports:
            self.emit(Found(report, state.origin, segment))

    def _learned(self, camera: str, reference: Reference) -> None:
        if not self.config.store_references:
            return
        try:
            self.references.save(camera, reference)
        except OSError as exc:  # kept in memory all the same; relearned after a restart
            log.error("camera %s: cannot store the scene reference: %s", camera, exc)
            return
        self.emit(ReferenceChanged(camera, time.time()))

    def _relearn(self, camera: str) -> None:
        self.references.remove(camera)
        state = self.cameras.get(camera)
        if state is not None:
            state.analysis.diagnoser.relearn()
            state.reference = None
        self.emit(ReferenceChanged(camera, None))

    def _live_batch(self, batch: LiveBatch) -> None:
        state = self.cameras.get(batch.camera)
        if state is None or state.origin != "live" or state.decoder is None:
            # A batch without its LiveStart: this worker was restarted mid-window.
            self.handle(LiveStart(batch.camera, batch.now))
            state = self.cameras[batch.camera]
        decoder = state.decoder
        assert decoder is not None  # set by LiveStart
        for item in batch.items:
            if isinstance(item, float):
                self._feed(state, Pulse(item))
                continue
            packet = self._interned(state, item)
            for sample in decoder.feed(packet):
                self._feed(state, sample)
        self._found(state, state.analysis.check(batch.now))

    @staticmethod
    def _interned(state: _Camera, packet: Packet) -> Packet:
        # Each batch arrives with its own copy of the codec parameters; the decoder restarts
        # when their object changes, so equal parameters must stay the same object.
        if packet.codec is state.codec:
            return packet
        if packet.codec == state.codec and state.codec is not None:
            return replace(packet, codec=state.codec)
        state.codec = packet.codec
        return packet

    def _segment(self, job: Segment) -> None:
        started = time.process_time()
        progress = [0.0]  # seconds of the file analysed, kept when an error cuts it short
        try:
            self._scan(job, progress)
        except Exception as exc:
            if isinstance(exc, AnalysisError):
                code, message = exc.code, exc.message  # the message names the file
                log.warning("recording not analysed: %s [%s]; going on", message, code)
            elif isinstance(exc, OSError):
                code, message = "unreadable", f"{job.path}: {exc.strerror or exc}"
                log.warning("recording not analysed: %s [%s]; going on", message, code)
            else:  # a bug: the camera's analysis starts afresh, the scan goes on
                code, message = "internal_error", f"{job.path}: {exc!r}"
                log.exception("recording %s: analysis failed; going on", job.path)
            self._end(job.camera)  # what follows cannot continue this analysis
            cpu = time.process_time() - started
            self.emit(SegmentDone(job.camera, job.path, progress[0], cpu, code, message))
            return
        cpu = time.process_time() - started
        self.emit(SegmentDone(job.camera, job.path, progress[0], cpu))

    def _scan(self, job: Segment, progress: list[float]) -> None:
        state = self._state(job.camera, "recording")
        path = Path(job.path)
        if not path.is_file():
            raise MediaNotFound(f"{path}: no such file")
        config = self.config.recording
        with FileSource(path, config.strategy, config.width) as source:
            length = source.duration or 0.0
            start = job.start if job.start is not None else path.stat().st_mtime - length
            previous = state.segment_end
            if previous is not None and abs(start - previous) > JOIN_SECONDS:
                self._end(job.camera)  # not a continuation: what was open ends there
                state = self._state(job.camera, "recording")
            for sample in source:
                progress[0] = max(progress[0], sample.t)
                shifted: Sample = (
                    Picture(sample.t + start, sample.image)
                    if isinstance(sample, Picture)
                    else Pulse(sample.t + start, sample.decodable)
                )
                self._feed(state, shifted, job.path)
        end = job.end if job.end is not None else start + max(length, progress[0])
        state.segment_end = end
        state.idle_after = time.monotonic() + max(IDLE_MIN_SECONDS, 2.0 * (end - start))


def main(config: WorkerConfig, jobs: Queue[Job], results: Queue[Result]) -> None:
    """The worker process's entry point (``multiprocessing`` spawns it)."""
    from gateway.cli import setup_logging  # the gateway's format and secret redaction

    setup_logging(config.log_level)
    # Below the gateway's priority: when the machine is busy, pictures are analysed late,
    # and the gateway's event loop, which serves cameras and viewers, does not wait.
    os.nice(10)
    log.info("analytics worker %d started (pid %d)", config.index, os.getpid())
    try:
        Worker(config, results.put).run(jobs)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the gateway stops us
        pass
    log.info("analytics worker %d stopped", config.index)
