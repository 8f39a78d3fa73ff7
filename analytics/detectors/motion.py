"""Motion (运动): something moves in the picture. Not a fault; reported so an operator
can find activity, and so "no motion for days" can be seen on a camera's timeline.

Difference of consecutive samples after removing each one's mean (a global change of
exposure is not motion), thresholded, with isolated pixels removed by an opening.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from analytics.detectors.base import INACTIVE, Reading
from analytics.detectors.lag import Lagged
from analytics.frame import Frame

_OPEN = np.ones((3, 3), np.uint8)


@dataclass(frozen=True, slots=True)
class MotionThresholds:
    """
    pixel_change: grey levels a pixel of the small picture (160 px wide) must change by
        to count as moving. Well above compression flicker between keyframes.
    area: share of moving pixels for a motion verdict. 0.002 of a 160 x 90 picture is
        about 29 px, a pedestrian some 50 m away on a typical plaza camera.
    full_area: share of moving pixels that gives score 1.
    interval: seconds between the compared pictures, at least; see
        :class:`analytics.detectors.lag.Lagged`.
    """

    pixel_change: float = 25.0
    area: float = 0.002
    full_area: float = 0.05
    interval: float = 0.4


class MotionDetector:
    """Per-camera state: an earlier sample's small grey picture, mean removed."""

    def __init__(self, th: MotionThresholds) -> None:
        self.th = th
        self._earlier = Lagged(th.interval)

    def update(self, t: float, frame: Frame) -> Reading:
        current = frame.small - float(frame.small.mean())
        previous = self._earlier.swap(t, current)
        if previous is None:
            return INACTIVE
        moving = (cv2.absdiff(current, previous) > self.th.pixel_change).astype(np.uint8)
        moving = np.asarray(cv2.morphologyEx(moving, cv2.MORPH_OPEN, _OPEN), dtype=np.uint8)
        share = float(np.count_nonzero(moving)) / moving.size
        return Reading.of(share / self.th.full_area, share >= self.th.area)
