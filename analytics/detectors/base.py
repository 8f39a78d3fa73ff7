"""What every detector returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reading:
    """A detector's verdict on one sample.

    ``score`` is in [0, 1] and grows with the severity (or, for motion, the amount) of the
    condition; ``active`` is the verdict after the detector's thresholds.
    """

    score: float
    active: bool

    @staticmethod
    def of(score: float, active: bool) -> Reading:
        return Reading(min(1.0, max(0.0, float(score))), bool(active))


INACTIVE = Reading(0.0, False)
