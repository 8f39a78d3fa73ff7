"""The earlier picture a temporal detector (frozen, motion) compares with.

At 25 fps consecutive pictures differ too little for a walking person to show, and a
quiet live scene could look frozen; one GOP apart they differ plainly. Comparing each
sample with one at least ``interval`` seconds older makes the verdicts the same whatever
the sampling rate.
"""

from __future__ import annotations

from analytics.frame import FloatImage


class Lagged:
    """Holds the picture compared with, replaced once ``interval`` seconds have passed."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._t = 0.0
        self._picture: FloatImage | None = None

    def swap(self, t: float, picture: FloatImage) -> FloatImage | None:
        """The picture to compare ``picture`` with (None: nothing comparable yet)."""
        earlier = self._picture
        if earlier is None or earlier.shape != picture.shape:  # first, or new resolution
            self._t, self._picture = t, picture
            return None
        if t - self._t >= self.interval:
            self._t, self._picture = t, picture
        return earlier
