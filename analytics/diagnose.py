"""Per-camera diagnosis of one sampled picture: every detector, then precedence.

Faults overlap: a black picture is also dark, featureless and unchanging; a dark picture
has no detail, so it also looks blurred. Each sample is reported under the fault that
explains it best, so an operator sees "black", not black + too_dark + blur + frozen +
occlusion. :data:`SUPPRESSES` lists which verdict hides which.
"""

from __future__ import annotations

from collections.abc import Mapping

from analytics.config import DetectorConfig
from analytics.detectors.base import INACTIVE, Reading
from analytics.detectors.black import detect_black
from analytics.detectors.blur import detect_blur
from analytics.detectors.brightness import detect_too_bright, detect_too_dark
from analytics.detectors.color_cast import detect_color_cast
from analytics.detectors.frozen import FrozenDetector
from analytics.detectors.motion import MotionDetector
from analytics.detectors.noise import detect_noise
from analytics.detectors.occlusion import detect_occlusion
from analytics.detectors.scene_change import detect_scene_change
from analytics.events import EventType as E
from analytics.frame import Frame
from analytics.reference import Reference, ReferenceLearner

_PICTURE_TYPES = frozenset(E) - {E.SIGNAL_LOSS}
_UNJUDGEABLE = frozenset({E.BLUR, E.OCCLUSION, E.COLOR_CAST, E.NOISE, E.SCENE_CHANGE})

SUPPRESSES: Mapping[E, frozenset[E]] = {
    # Nothing else can be judged on a black picture.
    E.BLACK: _PICTURE_TYPES - {E.BLACK},
    # Too little (or too much) light hides detail, colour and structure.
    E.TOO_DARK: _UNJUDGEABLE,
    E.TOO_BRIGHT: _UNJUDGEABLE,
    # A cover over the lens removes detail and changes the view, but the camera has not
    # lost focus or been turned.
    E.OCCLUSION: frozenset({E.BLUR, E.SCENE_CHANGE}),
    # Snow changes every pixel between samples: that is not motion.
    E.NOISE: frozenset({E.MOTION, E.BLUR}),
    E.FROZEN: frozenset({E.MOTION}),
    # A smeared picture no longer aligns reliably with the sharp reference.
    E.BLUR: frozenset({E.SCENE_CHANGE}),
}


class Diagnoser:
    """Per-camera state: the stateful detectors and the camera's reference."""

    def __init__(self, config: DetectorConfig, reference: Reference | None = None) -> None:
        self.config = config
        self.reference = reference
        self._frozen = FrozenDetector(config.frozen)
        self._motion = MotionDetector(config.motion)
        self._learner = ReferenceLearner(config.learning, config.occlusion)

    def interrupt(self) -> None:
        """Sampling pauses (a live camera sampled now and then): the next sample must not be
        compared with one from before the pause, which would look like motion."""
        self._frozen = FrozenDetector(self.config.frozen)
        self._motion = MotionDetector(self.config.motion)

    def relearn(self) -> None:
        """Forget the reference; the next stretch of good samples becomes the new one."""
        self.reference = None
        self._learner.reset()

    def diagnose(self, t: float, frame: Frame) -> dict[E, Reading]:
        """Readings of every picture-based event type (all but signal_loss) for one sample."""
        c = self.config
        reference = self.reference
        readings = {
            E.BLACK: detect_black(frame, c.black),
            E.TOO_DARK: detect_too_dark(frame, c.brightness),
            E.TOO_BRIGHT: detect_too_bright(frame, c.brightness),
            E.BLUR: detect_blur(frame, c.blur),
            E.COLOR_CAST: detect_color_cast(frame, c.color_cast),
            E.NOISE: detect_noise(frame, c.noise),
            E.OCCLUSION: detect_occlusion(
                frame, c.occlusion, reference.blank_cells if reference else None
            ),
            E.FROZEN: self._frozen.update(t, frame),
            E.MOTION: self._motion.update(t, frame),
            E.SCENE_CHANGE: (
                detect_scene_change(frame, reference.picture, reference.window, c.scene_change)
                if reference
                else INACTIVE
            ),
        }
        active = [kind for kind, reading in readings.items() if reading.active]
        hidden = frozenset[E]().union(*(SUPPRESSES.get(kind, ()) for kind in active))
        for kind in hidden:
            readings[kind] = Reading(readings[kind].score, False)
        if reference is None and not any(r.active for k, r in readings.items() if k.is_fault):
            self.reference = self._learner.add(t, frame)
        return readings
