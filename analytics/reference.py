"""A camera's reference: what its picture looks like when all is well.

Learned from the first stretch of good samples (no fault active) and kept until refreshed
(``POST /api/v1/cameras/{id}/diagnosis/reference``: after a deliberate re-aim the new view
is the good one). ``scene_change`` aligns the current picture with its picture;
``occlusion`` ignores the grid cells that were featureless in it (a blank wall, an overcast
sky).

:class:`ReferenceStore` keeps each camera's reference on disk, so a restart does not
relearn it, which would take whatever the camera shows then (perhaps the wrong view) for
the good one.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from analytics.detectors.occlusion import CellMask, OcclusionThresholds, featureless_cells
from analytics.detectors.scene_change import window
from analytics.frame import FloatImage, Frame, Image


@dataclass(frozen=True, slots=True)
class Reference:
    picture: FloatImage  # the median grey picture (passers-by removed), float32
    window: FloatImage  # see analytics.detectors.scene_change.window
    blank_cells: CellMask  # occlusion grid cells featureless in any learning sample


@dataclass(frozen=True, slots=True)
class LearningThresholds:
    """
    seconds: span of good samples to learn from. Two seconds of a plaza already have the
        passers-by in different places, so the median picture shows the scene itself.
    samples: minimum number of good samples, whatever their span.
    """

    seconds: float = 2.0
    samples: int = 3


@dataclass
class ReferenceLearner:
    """Collects good samples until there are enough to make a :class:`Reference`."""

    th: LearningThresholds
    occlusion: OcclusionThresholds
    _times: list[float] = field(default_factory=list)
    _pictures: list[Image] = field(default_factory=list)
    _blank: CellMask | None = None

    def add(self, t: float, frame: Frame) -> Reference | None:
        if self._pictures and self._pictures[0].shape != frame.gray.shape:
            self.reset()  # resolution changed while learning: start over
        self._times.append(t)
        self._pictures.append(frame.gray)
        blank = featureless_cells(frame, self.occlusion)
        self._blank = blank if self._blank is None else self._blank | blank
        enough_time = self._times[-1] - self._times[0] >= self.th.seconds
        if not (enough_time and len(self._pictures) >= self.th.samples):
            return None
        median: FloatImage = np.median(np.stack(self._pictures), axis=0).astype(np.float32)
        reference = Reference(median, window(median.shape), self._blank)
        self.reset()
        return reference

    def reset(self) -> None:
        self._times.clear()
        self._pictures.clear()
        self._blank = None


class ReferenceStore:
    """``<folder>/<camera>.npz`` (the reference) and ``<camera>.jpg`` (its picture, for people).

    Files are replaced atomically (written aside, then renamed): a crash leaves the old
    reference or the new one, never half of one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, camera: str) -> Path:
        return self.folder / f"{camera}.npz"

    def picture_path(self, camera: str) -> Path:
        return self.folder / f"{camera}.jpg"

    def load(self, camera: str) -> Reference | None:
        """The stored reference; None if there is none or it cannot be read (then relearnt)."""
        try:
            with np.load(self.path(camera)) as data:
                picture = np.asarray(data["picture"], dtype=np.float32)
                blank = np.asarray(data["blank_cells"], dtype=np.bool_)
        except (OSError, KeyError, ValueError):
            return None
        return Reference(picture, window(picture.shape), blank)

    def save(self, camera: str, reference: Reference) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, picture=reference.picture, blank_cells=reference.blank_cells)
        _replace(self.path(camera), buffer.getvalue())
        ok, jpeg = cv2.imencode(".jpg", np.clip(reference.picture, 0, 255).astype(np.uint8))
        if ok:
            _replace(self.picture_path(camera), jpeg.tobytes())

    def remove(self, camera: str) -> None:
        for path in (self.path(camera), self.picture_path(camera)):
            path.unlink(missing_ok=True)


def _replace(path: Path, data: bytes) -> None:
    aside = path.with_name(path.name + ".tmp")
    aside.write_bytes(data)
    os.replace(aside, path)
