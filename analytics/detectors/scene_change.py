"""Scene change (场景变更): the camera was moved, turned or re-zoomed.

The current picture is aligned with the camera's reference picture (:mod:`analytics.reference`)
by phase correlation. A camera that has not moved aligns at (almost) no shift, whatever
walks through the view and however the light changes: people cover a small part of the
picture, and phase correlation ignores brightness and contrast. A moved camera aligns at
the shift of the move, and a turned or re-zoomed one at some arbitrary place, as there
is nothing left to align. This holds even for nearly textureless views (a plaza seen
from above), where edge- or histogram-based comparisons hardly tell views apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from analytics.detectors.base import Reading
from analytics.frame import FloatImage, Frame


@dataclass(frozen=True, slots=True)
class SceneChangeThresholds:
    """
    max_shift: the view has changed when the best alignment with the reference is
        shifted by more than this share of the picture width. 0.03 is 10 px of a
        320 px picture: an unmoved camera aligns within 1-4 px (encoder and resampling
        jitter), while a nudge that shifts the view by 3% or more already misplaces
        any region drawn on it.
    """

    max_shift: float = 0.03


def window(shape: tuple[int, ...]) -> FloatImage:
    """The Hann window phase correlation uses, so the picture borders do not correlate."""
    hann: FloatImage = np.asarray(
        cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F), dtype=np.float32
    )
    return hann


def detect_scene_change(
    frame: Frame, reference: FloatImage, hann: FloatImage, th: SceneChangeThresholds
) -> Reading:
    """Compare with ``reference``, the camera's good grey picture (``hann`` its window)."""
    current = frame.gray.astype(np.float32)
    if current.shape != reference.shape:  # a new resolution: the view cannot be compared
        return Reading.of(1.0, True)
    # phaseCorrelate applies the window to its inputs in place (OpenCV 5): give it copies.
    (dx, dy), _ = cv2.phaseCorrelate(reference.copy(), current, hann)
    shift = float(np.hypot(dx, dy)) / current.shape[1]
    # score 0.5 at the threshold, 1 at twice it
    return Reading.of(shift / (2.0 * th.max_shift), shift > th.max_shift)
