"""Occlusion (遮挡): something covers a large part of the view (cloth, a hand, spray paint,
a sign hung in front of the lens).

An occluder close to the lens is out of focus and evenly lit, so the part of the picture
it covers has no texture. The picture is cut into a grid; a cell whose grey levels hardly
vary is featureless. Cells that were featureless in the camera's good picture (a blank
wall, an overcast sky) do not count, when such a reference is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from analytics.detectors.base import Reading
from analytics.frame import Frame

CellMask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class OcclusionThresholds:
    """
    columns / rows: the grid. 8 x 6 cells of a 320 px picture are 40 x 30 px, large
        enough that a cell over real scenery almost always holds some texture.
    cell_std: a cell whose grey-level standard deviation is below this is featureless.
        A cover on the lens leaves under 1.5 levels once downscaled; even plain paving
        seen from above keeps 2 or more from its joints and stains. Covers with strong
        shading (a hand lit from one side) stay above it and are missed.
    fraction: share of the cells (not featureless in the reference) that must be
        featureless for an occlusion. 0.4: a cover over well over a third of the view.
    """

    columns: int = 8
    rows: int = 6
    cell_std: float = 2.0
    fraction: float = 0.4


def featureless_cells(frame: Frame, th: OcclusionThresholds) -> CellMask:
    img = frame.gray.astype(np.float32)
    grid = (th.columns, th.rows)
    mean = cv2.resize(img, grid, interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(img * img, grid, interpolation=cv2.INTER_AREA)
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    mask: CellMask = std < th.cell_std
    return mask


def detect_occlusion(
    frame: Frame, th: OcclusionThresholds, naturally_blank: CellMask | None = None
) -> Reading:
    blank = featureless_cells(frame, th)
    if naturally_blank is not None:
        considered = ~naturally_blank
        total = int(np.count_nonzero(considered))
        if total == 0:  # the reference has no texture at all; nothing can be covered
            return Reading.of(0.0, False)
        share = float(np.count_nonzero(blank & considered)) / total
    else:
        share = float(np.count_nonzero(blank)) / blank.size
    return Reading.of(share, share >= th.fraction)
