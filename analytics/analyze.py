"""Analysis of a frame source into events: the one code path for files and cameras.

:class:`Analysis` holds one source's state (detectors, reference, timeline, signal loss)
and is fed samples one at a time: the worker feeds it a live camera's samples and a
camera's recorded segments one after the other; ``analyze_source`` feeds it a whole
source. ``analyze_file`` opens a file for it, and ``analyze_files`` scans several,
logging a bad file and going on with the next.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from analytics.config import AnalysisConfig
from analytics.detectors.signal_loss import SignalLossDetector
from analytics.diagnose import Diagnoser
from analytics.errors import AnalysisError, MediaNotFound
from analytics.events import Event, Report
from analytics.frame import Frame
from analytics.reference import Reference
from analytics.sampler import FileSource, FrameSource, Picture, Sample
from analytics.timeline import Timeline

log = logging.getLogger(__name__)

Progress = Callable[[float], None]  # told the time of each analysed picture


class Analysis:
    """One source's analysis: samples in, events out.

    ``onsets``: report each event also when it is confirmed (live sources), not only when
    it ends. Times are the source's clock; live sources also tell the wall-clock time with
    :meth:`check`, which is what notices a camera that falls silent.
    """

    def __init__(
        self,
        config: AnalysisConfig,
        *,
        camera: str | None = None,
        reference: Reference | None = None,
        onsets: bool = False,
    ) -> None:
        self.diagnoser = Diagnoser(config.detectors, reference)
        self.timeline = Timeline(config.debounce, camera, onsets=onsets)
        self.signal = SignalLossDetector(config.detectors.signal_loss, camera)
        self.last = -math.inf  # the latest time seen, of a sample or a check
        self.last_picture: float | None = None

    def feed(self, sample: Sample) -> list[Report]:
        self.last = max(self.last, sample.t)
        if isinstance(sample, Picture):
            self.last_picture = sample.t
            frame = Frame(sample.image)
            return self.timeline.update(sample.t, self.diagnoser.diagnose(sample.t, frame), frame)
        lost = self.signal.update(sample.t, sample.decodable)
        return [] if lost is None else [lost]

    def check(self, now: float) -> list[Report]:
        """Live: it is ``now`` and the source has delivered everything up to now. Once it has
        been silent too long, the open picture events end with the last picture (nothing
        can be judged without one) and the signal loss begins."""
        self.last = max(self.last, now)
        onset = self.signal.check(now)
        if onset is None:
            return []
        ended: list[Report] = []
        if self.last_picture is not None:
            ended += self.timeline.finish(self.last_picture)
        return [*ended, onset]

    def resume(self, now: float) -> None:
        """Live: sampling starts again at ``now`` after a deliberate pause. Open events stay
        open; temporal detectors start afresh; the silence timer counts from ``now``."""
        self.last = max(self.last, now)
        self.signal.expect(now)
        self.diagnoser.interrupt()
        self.timeline.interrupt()

    def finish(self) -> list[Event]:
        """The source ended: every event still open ends, at the latest time seen."""
        if not math.isfinite(self.last):
            return []
        lost = self.signal.finish(self.last)
        return [*([] if lost is None else [lost]), *self.timeline.finish(self.last)]


def analyze_source(
    source: FrameSource,
    config: AnalysisConfig,
    *,
    camera: str | None = None,
    progress: Progress | None = None,
) -> Iterator[Event]:
    """Events of ``source``, each yielded as soon as it has ended (or the source has)."""
    analysis = Analysis(config, camera=camera)
    for sample in source:
        for report in analysis.feed(sample):
            assert isinstance(report, Event)  # no onsets were asked for
            yield report
        if progress is not None and isinstance(sample, Picture):
            progress(sample.t)
    yield from analysis.finish()


def analyze_file(
    path: Path | str,
    config: AnalysisConfig | None = None,
    *,
    on_duration: Callable[[float | None], None] | None = None,
    progress: Progress | None = None,
) -> Iterator[Event]:
    """Events of a media file, times in seconds from its start.

    Raises :class:`~analytics.errors.AnalysisError` subclasses: ``MediaNotFound``,
    ``NoVideoStream``, ``CorruptMedia`` when the file cannot be read, ``TruncatedMedia``
    after the events of the part that could be. ``on_duration`` is told the file's
    declared length (None if unknown) before the first picture is analysed.
    """
    config = config or AnalysisConfig()
    path = Path(path)
    if not path.is_file():
        raise MediaNotFound(f"{path}: no such file")
    with FileSource(path, config.strategy, config.width) as source:
        if on_duration is not None:
            on_duration(source.duration)
        yield from analyze_source(source, config, progress=progress)


def analyze_files(
    paths: Iterable[Path],
    config: AnalysisConfig | None = None,
    *,
    on_error: Callable[[Path, AnalysisError], None] | None = None,
    on_start: Callable[[Path, float | None], None] | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[Path, Event]]:
    """Events of several files. A file that cannot be analysed is reported to
    ``on_error`` (by default: logged) and the scan goes on with the next one.
    ``on_start`` is told each file and its declared length as its analysis starts."""
    for path in paths:

        def started(duration: float | None, path: Path = path) -> None:
            if on_start is not None:
                on_start(path, duration)

        try:
            for event in analyze_file(path, config, on_duration=started, progress=progress):
                yield path, event
        except AnalysisError as exc:
            if on_error is None:
                log.warning("skipping %s: %s (%s)", path, exc.message, exc.code)
            else:
                on_error(path, exc)
