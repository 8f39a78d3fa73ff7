"""Blur (模糊/虚焦): the picture is out of focus or smeared.

Uses the no-reference measure of Crété-Roffet et al. ("The blur effect", SPIE 2007): blur
the picture again and see how much its neighbour differences shrink. A sharp picture
loses much of its edge contrast; an already blurred one loses little. The measure is a
ratio, so it depends little on how much texture or contrast the scene has.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from analytics.detectors.base import Reading
from analytics.frame import FloatImage, Frame


@dataclass(frozen=True, slots=True)
class BlurThresholds:
    """
    blur: verdict threshold on the blur measure (0 = sharp, 1 = no detail at all). Sharp
        surveillance pictures at 320 px measure about 0.2-0.35; a defocused lens or a
        smeared dome cover measures 0.5 and more.
    kernel: length of the re-blurring box filter in pixels of the sampled picture.
    """

    blur: float = 0.5
    kernel: int = 9


def _loss(img: FloatImage, blurred: FloatImage, axis: int) -> float:
    d_img = np.abs(np.diff(img, axis=axis))
    d_blurred = np.abs(np.diff(blurred, axis=axis))
    total = float(d_img.sum())
    if total <= 0.0:  # a uniform picture has no detail left to lose: fully blurred
        return 1.0
    lost = float(np.maximum(d_img - d_blurred, 0.0).sum())
    return 1.0 - lost / total


def blur_measure(frame: Frame, kernel: int) -> float:
    img = frame.gray.astype(np.float32)
    vertical = np.asarray(cv2.blur(img, (1, kernel)), dtype=np.float32)
    horizontal = np.asarray(cv2.blur(img, (kernel, 1)), dtype=np.float32)
    return max(_loss(img, vertical, 0), _loss(img, horizontal, 1))


def detect_blur(frame: Frame, th: BlurThresholds) -> Reading:
    measure = blur_measure(frame, th.kernel)
    return Reading.of(measure, measure >= th.blur)
