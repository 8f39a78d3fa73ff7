"""Signal loss (信号丢失): no video at all for a while.

Unlike the other detectors this one does not look at pictures but at their absence: it is
told the time of every video packet the source delivered (decoded or skipped by the
sampling strategy) and whether it could be decoded, and reports the intervals in which
nothing decodable arrived. Its events are produced directly, since by definition no
sample falls inside them.

A live camera that falls silent sends no packet that could end the gap, so live analysis
also asks :meth:`SignalLossDetector.check` with the wall-clock time: once the silence is
longer than ``max_gap`` the loss is reported as an onset, and the event that ends it
follows when video returns (or the analysis ends).
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.events import Event, EventType, Onset


@dataclass(frozen=True, slots=True)
class SignalLossThresholds:
    """
    max_gap: seconds without decodable video that make a signal loss. Longer than the
        frame interval of any real camera stream (even 1 fps recording), short enough to
        meet a 2 s onset requirement.
    """

    max_gap: float = 1.5


class SignalLossDetector:
    """Per-camera state: when decodable video was last seen."""

    def __init__(self, th: SignalLossThresholds, camera: str | None = None) -> None:
        self.th = th
        self.camera = camera
        self._last_ok: float | None = None
        self._reported = False  # the current gap's onset was reported by check()

    def update(self, t: float, decodable: bool) -> Event | None:
        """Note a video packet at ``t``; returns the loss that it ends, if any."""
        if not decodable:
            return None
        event = self._gap_until(t)
        # Never back in time: a live camera's cached GOP arrives with older times.
        self._last_ok = t if self._last_ok is None else max(self._last_ok, t)
        return event

    def check(self, now: float) -> Onset | None:
        """Live sources: nothing decodable since the last packet, and it is ``now``; returns
        the loss's onset once its gap is longer than ``max_gap`` (once per gap)."""
        if self._reported or self._last_ok is None or now - self._last_ok <= self.th.max_gap:
            return None
        self._reported = True
        return Onset(EventType.SIGNAL_LOSS, self._last_ok, 1.0, None, self.camera)

    def expect(self, now: float) -> None:
        """Live sources: video is expected from ``now`` on (sampling starts or resumes after
        a deliberate pause, which is no loss). A loss already reported stays open."""
        if not self._reported:
            self._last_ok = now if self._last_ok is None else max(self._last_ok, now)

    def finish(self, t: float) -> Event | None:
        """The source ended at ``t``; returns a loss still going on then (an undecodable tail,
        or a reported loss that nothing ended)."""
        return self._gap_until(t)

    def _gap_until(self, t: float) -> Event | None:
        reported, self._reported = self._reported, False
        if self._last_ok is None or not (reported or t - self._last_ok > self.th.max_gap):
            return None
        return Event(
            EventType.SIGNAL_LOSS, self._last_ok, max(t, self._last_ok), 1.0, None, self.camera
        )
