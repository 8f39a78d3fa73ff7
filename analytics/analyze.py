"""Analysis of a frame source into events: the one code path for files and cameras.

``analyze_source`` is what the worker runs for a live camera and for a closed recording
segment; ``analyze_file`` opens a file for it, and ``analyze_files`` scans several,
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
from analytics.events import Event
from analytics.frame import Frame
from analytics.sampler import FileSource, FrameSource, Picture
from analytics.timeline import Timeline

log = logging.getLogger(__name__)

Progress = Callable[[float], None]  # told the time of each analysed picture


def analyze_source(
    source: FrameSource,
    config: AnalysisConfig,
    *,
    camera: str | None = None,
    progress: Progress | None = None,
) -> Iterator[Event]:
    """Events of ``source``, each yielded as soon as it has ended (or the source has)."""
    diagnoser = Diagnoser(config.detectors)
    timeline = Timeline(config.debounce, camera)
    signal = SignalLossDetector(config.detectors.signal_loss, camera)
    last = -math.inf
    for sample in source:
        last = max(last, sample.t)
        if isinstance(sample, Picture):
            frame = Frame(sample.image)
            yield from timeline.update(sample.t, diagnoser.diagnose(sample.t, frame), frame)
            if progress is not None:
                progress(sample.t)
        elif (lost := signal.update(sample.t, sample.decodable)) is not None:
            yield lost
    if math.isfinite(last):
        if (lost := signal.finish(last)) is not None:
            yield lost
        yield from timeline.finish(last)


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
