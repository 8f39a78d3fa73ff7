"""Signal loss (信号丢失): no video at all for a while.

Unlike the other detectors this one does not look at pictures but at their absence: it is
told the time of every video packet the source delivered (decoded or skipped by the
sampling strategy) and whether it could be decoded, and reports the intervals in which
nothing decodable arrived. Its events are produced directly, since by definition no
sample falls inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.events import Event, EventType


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

    def update(self, t: float, decodable: bool) -> Event | None:
        """Note a video packet at ``t``; returns the loss that it ends, if any."""
        if not decodable:
            return None
        event = self._gap_until(t)
        self._last_ok = t
        return event

    def finish(self, t: float) -> Event | None:
        """The source ended at ``t``; returns a loss still going on then (an undecodable tail)."""
        return self._gap_until(t)

    def _gap_until(self, t: float) -> Event | None:
        if self._last_ok is None or t - self._last_ok <= self.th.max_gap:
            return None
        return Event(EventType.SIGNAL_LOSS, self._last_ok, t, 1.0, None, self.camera)
