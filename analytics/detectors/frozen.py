"""Frozen picture (画面冻结): the source keeps sending the same picture.

Samples are compared with an earlier one, cell by cell; the picture is frozen when no cell has
changed. Using the largest cell change, not the mean, keeps a live but quiet scene from
looking frozen as long as anything changes anywhere, such as the OSD clock most cameras
burn into the picture, which stops with a frozen encoder input. A live scene with no
movement, no clock and no sensor noise is indistinguishable from a frozen one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from analytics.detectors.base import INACTIVE, Reading
from analytics.detectors.lag import Lagged
from analytics.frame import Frame


@dataclass(frozen=True, slots=True)
class FrozenThresholds:
    """
    columns / rows: the comparison grid over the small grey picture (160 px wide).
    max_change: a sample is frozen when the mean absolute grey-level change of every cell
        since the compared sample is below this. Re-encoding the same picture (a frozen
        encoder input, a new keyframe of it) changes cells by well under one level; a
        person walking, a clock digit or live sensor noise changes some cell by more.
    interval: seconds between the compared pictures, at least; see
        :class:`analytics.detectors.lag.Lagged`.
    """

    columns: int = 16
    rows: int = 9
    max_change: float = 0.8
    interval: float = 0.4


class FrozenDetector:
    """Per-camera state: an earlier sample's small grey picture."""

    def __init__(self, th: FrozenThresholds) -> None:
        self.th = th
        self._earlier = Lagged(th.interval)

    def update(self, t: float, frame: Frame) -> Reading:
        previous = self._earlier.swap(t, frame.small)
        if previous is None:
            return INACTIVE
        change = cv2.absdiff(frame.small, previous)
        cells = cv2.resize(change, (self.th.columns, self.th.rows), interpolation=cv2.INTER_AREA)
        largest = float(np.max(cells))
        # score 1 for identical pictures, falling to 0 at twice the threshold
        return Reading.of(1.0 - largest / (2.0 * self.th.max_change), largest < self.th.max_change)
