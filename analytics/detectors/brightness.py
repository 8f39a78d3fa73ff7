"""Brightness faults (亮度异常): picture too dark or too bright (over-exposed, washed out).

Percentiles rather than the mean make the verdict about the whole picture: a dark
occluder over half the view or a bright sky does not make a scene too dark or too bright,
but a picture whose *brightest* parts are dim is underexposed, and one that is white
over most of its area is blown out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.detectors.base import Reading
from analytics.frame import Frame


@dataclass(frozen=True, slots=True)
class BrightnessThresholds:
    """
    dark_percentile / dark_level: too dark when this percentile of grey levels is below
        dark_level. The 95th percentile at 60 (of 255) means even the brightest 5% of the
        picture is dim: details are lost in the dark, as in a night scene without IR.
    bright_percentile / bright_level: too bright when this percentile is above
        bright_level. The 25th percentile at 240 means three quarters of the picture are
        blown out to (almost) white: over-exposure, sun into the lens. A close view of a
        white floor in daylight stays near 210-220, not clipped.
    """

    dark_percentile: float = 95.0
    dark_level: float = 60.0
    bright_percentile: float = 25.0
    bright_level: float = 240.0


def detect_too_dark(frame: Frame, th: BrightnessThresholds) -> Reading:
    level = float(np.percentile(frame.gray, th.dark_percentile))
    return Reading.of(1.0 - level / 255.0, level < th.dark_level)


def detect_too_bright(frame: Frame, th: BrightnessThresholds) -> Reading:
    level = float(np.percentile(frame.gray, th.bright_percentile))
    return Reading.of(level / 255.0, level > th.bright_level)
