"""From per-sample verdicts to events, with debouncing.

A condition becomes an event once it has held for ``on_seconds`` (from its first to its
latest positive sample, with no negative sample between), and the event ends once the
condition has been absent for ``off_seconds``. The event's start is backdated to the
first positive sample, its end to the first negative one, so debouncing delays the
report but does not distort the interval.

Files are reported event by event as each ends. Live sources (``onsets=True``) also get an
:class:`~analytics.events.Onset` the moment an event is confirmed, so a fault is known while
it lasts; its :class:`~analytics.events.Event` follows when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from analytics.detectors.base import Reading
from analytics.events import Event, EventType, Onset, Report
from analytics.frame import Frame


@dataclass(frozen=True, slots=True)
class Debounce:
    """
    on_seconds: how long a condition must hold before it is an event; also the shortest
        event reported. One second filters single odd samples (a camera's auto-exposure
        hunting, a bird in front of the lens) yet keeps the onset within 2 s.
    off_seconds: how long a condition must be gone before its event ends. Two seconds
        keep a flickering fault (or a person pausing, for motion) one event, not many.
    from_previous: the verdict compares a sample with the one before it and holds from
        that one on (frozen: the frozen picture was already showing in the previous
        sample), so the event starts there. Keeps the onset error within one sample
        interval even when samples are a GOP apart.
    """

    on_seconds: float = 1.0
    off_seconds: float = 2.0
    from_previous: bool = False


DEFAULT_DEBOUNCE: Mapping[EventType, Debounce] = {
    **{t: Debounce() for t in EventType},
    # Motion is not a fault: report it from the first moving sample, and merge pauses.
    EventType.MOTION: Debounce(on_seconds=0.0, off_seconds=3.0),
    EventType.FROZEN: Debounce(from_previous=True),
}


class _Track:
    """One condition seen as positive, not yet ended."""

    def __init__(self, t: float, reading: Reading, frame: Frame) -> None:
        self.start = t
        self.opened = False
        self.cleared_at: float | None = None
        self.peak = reading.score
        self.peak_frame = frame

    def see(self, reading: Reading, frame: Frame) -> None:
        self.cleared_at = None
        if reading.score > self.peak:
            self.peak, self.peak_frame = reading.score, frame


class Timeline:
    """Per-camera state: the conditions being tracked."""

    def __init__(
        self,
        debounce: Mapping[EventType, Debounce] = DEFAULT_DEBOUNCE,
        camera: str | None = None,
        *,
        onsets: bool = False,
    ) -> None:
        self.debounce = debounce
        self.camera = camera
        self.onsets = onsets
        self._tracks: dict[EventType, _Track] = {}
        self._previous_t: float | None = None

    def update(self, t: float, readings: Mapping[EventType, Reading], frame: Frame) -> list[Report]:
        """Feed one sample's readings; returns the events that ended with it (and, with
        ``onsets``, those confirmed by it)."""
        ended: list[Report] = []
        previous_t, self._previous_t = self._previous_t, t
        for kind, reading in readings.items():
            rule = self.debounce[kind]
            track = self._tracks.get(kind)
            if reading.active:
                if track is None:
                    start = previous_t if rule.from_previous and previous_t is not None else t
                    track = self._tracks[kind] = _Track(start, reading, frame)
                track.see(reading, frame)
                if not track.opened and t - track.start >= rule.on_seconds:
                    track.opened = True
                    if self.onsets:
                        ended.append(self._onset(kind, track))
            elif track is not None:
                if not track.opened:
                    del self._tracks[kind]  # did not last: not an event
                    continue
                if track.cleared_at is None:
                    track.cleared_at = t
                if t - track.cleared_at >= rule.off_seconds:
                    ended.append(self._event(kind, self._tracks.pop(kind), track.cleared_at))
        return ended

    def interrupt(self) -> None:
        """Sampling pauses (a live camera sampled now and then): the next sample does not
        follow this one, so no verdict may be backdated to it. Events stay open."""
        self._previous_t = None

    def finish(self, t: float) -> list[Event]:
        """The source ended at ``t``: end every open event (pending ones did not last)."""
        ended = [
            self._event(kind, track, track.cleared_at if track.cleared_at is not None else t)
            for kind, track in self._tracks.items()
            if track.opened
        ]
        self._tracks.clear()
        self._previous_t = None
        return ended

    def _event(self, kind: EventType, track: _Track, end: float) -> Event:
        return Event(kind, track.start, end, track.peak, track.peak_frame.jpeg(), self.camera)

    def _onset(self, kind: EventType, track: _Track) -> Onset:
        return Onset(kind, track.start, track.peak, track.peak_frame.jpeg(), self.camera)
