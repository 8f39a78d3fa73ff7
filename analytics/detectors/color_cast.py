"""Colour cast (偏色): the whole picture is tinted (failed IR-cut filter, bad white balance).

The "equivalent circle" method on CIELAB chroma (Xu et al.): ``D`` is the distance of the
mean chroma from neutral grey, ``M`` the mean spread of the chroma around that mean. A
natural scene has varied colours around a roughly neutral mean (small D, large M); a
cast shifts every colour the same way (large D relative to M).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from analytics.detectors.base import Reading
from analytics.frame import Frame


@dataclass(frozen=True, slots=True)
class ColorCastThresholds:
    """
    ratio: verdict threshold on the score D / (D + M). 0.6 is D = 1.5 M, the usual
        "obvious cast" limit of the method.
    min_offset: minimum D (CIELAB units, 8-bit scale) for a cast. Below it the tint is too
        faint to matter, and grey scenes (small M) would otherwise look cast.
    """

    ratio: float = 0.6
    min_offset: float = 8.0


def detect_color_cast(frame: Frame, th: ColorCastThresholds) -> Reading:
    lab = cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2LAB)
    a = lab[:, :, 1].astype(np.float32) - 128.0
    b = lab[:, :, 2].astype(np.float32) - 128.0
    mean_a, mean_b = float(a.mean()), float(b.mean())
    offset = float(np.hypot(mean_a, mean_b))
    spread = float(np.hypot(np.abs(a - mean_a).mean(), np.abs(b - mean_b).mean()))
    score = offset / (offset + spread) if offset > 0.0 else 0.0
    return Reading.of(score, score >= th.ratio and offset >= th.min_offset)
