"""Black screen (黑屏): the picture is (almost) entirely black."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.detectors.base import Reading
from analytics.frame import Frame


@dataclass(frozen=True, slots=True)
class BlackThresholds:
    """
    level: grey level (0-255, full range after decoding) at or below which a pixel counts
        as black. Video black is luma 16 in limited range, 0 once decoded; 32 leaves room
        for encoder ringing and a lens that is not quite light-tight.
    fraction: share of black pixels that makes a black screen. 0.98, not 1.0, because
        cameras keep drawing their OSD (clock, camera name) over a black picture.
    """

    level: int = 32
    fraction: float = 0.98


def detect_black(frame: Frame, th: BlackThresholds) -> Reading:
    share = float(np.count_nonzero(frame.gray <= th.level)) / frame.gray.size
    return Reading.of(share, share >= th.fraction)
