"""One sampled picture with the derived views the detectors share.

Detectors receive a :class:`Frame` instead of a bare array so each derived view (grey,
small grey) is computed once per sample however many detectors use it.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
FloatImage = NDArray[np.float32]

SMALL_WIDTH = 160  # temporal comparisons need shapes, not detail; fewer pixels, less noise


class Frame:
    """A downscaled BGR picture (uint8, H x W x 3), treated as read-only."""

    def __init__(self, bgr: Image) -> None:
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 BGR image, got {bgr.dtype} {bgr.shape}")
        self.bgr = bgr

    @cached_property
    def gray(self) -> Image:
        gray: Image = np.asarray(cv2.cvtColor(self.bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        return gray

    @cached_property
    def small(self) -> FloatImage:
        """Grey, SMALL_WIDTH wide, area-averaged (which also averages sensor noise away)."""
        h, w = self.gray.shape
        height = max(1, round(h * SMALL_WIDTH / w))
        small = cv2.resize(self.gray, (SMALL_WIDTH, height), interpolation=cv2.INTER_AREA)
        return small.astype(np.float32)

    def jpeg(self, quality: int = 80) -> bytes:
        ok, buf = cv2.imencode(".jpg", self.bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:  # only for degenerate images; a thumbnail is evidence, not essential
            return b""
        return buf.tobytes()
