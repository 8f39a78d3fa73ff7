"""Noise (雪花/噪声): snow, heavy grain, interference.

Immerkær's fast noise estimate ("Fast noise variance estimation", CVIU 1996): the response
to a mask that cancels any locally linear image structure is mostly noise. Edges leak
into it, so the strongest responses near edges are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from analytics.detectors.base import Reading
from analytics.frame import Frame

_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class NoiseThresholds:
    """
    sigma: verdict threshold on the estimated noise standard deviation, in grey levels of
        the sampled (downscaled) picture. Downscaling averages fine grain away, so what is
        left at 320 px is noise an operator sees as snow.
    edge_percentile: pixels whose gradient is above this percentile are left out of the
        estimate (edges, not noise).
    """

    sigma: float = 6.0
    edge_percentile: float = 80.0


def noise_sigma(frame: Frame, edge_percentile: float) -> float:
    img = frame.gray.astype(np.float32)
    response = np.abs(cv2.filter2D(img, -1, _MASK))[1:-1, 1:-1]
    gradient = np.abs(cv2.Sobel(img, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(img, cv2.CV_32F, 0, 1))
    gradient = gradient[1:-1, 1:-1]
    flat = gradient <= np.percentile(gradient, edge_percentile)
    if not flat.any():
        return 0.0
    # sqrt(pi/2) / 6 turns the mean absolute mask response into a standard deviation.
    return float(np.sqrt(np.pi / 2.0) / 6.0 * response[flat].mean())


def detect_noise(frame: Frame, th: NoiseThresholds) -> Reading:
    sigma = noise_sigma(frame, th.edge_percentile)
    return Reading.of(sigma / (2.0 * th.sigma), sigma >= th.sigma)
