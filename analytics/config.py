"""Analysis settings: every detector's thresholds, debouncing and the sampling strategy.

All defaults are documented where they are defined (the ``*Thresholds`` dataclasses in
:mod:`analytics.detectors`, :class:`analytics.timeline.Debounce`); a deployment
overrides them per field, e.g. ``replace(config, blur=BlurThresholds(blur=0.55))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from analytics.detectors.black import BlackThresholds
from analytics.detectors.blur import BlurThresholds
from analytics.detectors.brightness import BrightnessThresholds
from analytics.detectors.color_cast import ColorCastThresholds
from analytics.detectors.frozen import FrozenThresholds
from analytics.detectors.motion import MotionThresholds
from analytics.detectors.noise import NoiseThresholds
from analytics.detectors.occlusion import OcclusionThresholds
from analytics.detectors.scene_change import SceneChangeThresholds
from analytics.detectors.signal_loss import SignalLossThresholds
from analytics.events import EventType
from analytics.reference import LearningThresholds
from analytics.sampler import Strategy
from analytics.timeline import DEFAULT_DEBOUNCE, Debounce


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    black: BlackThresholds = field(default_factory=BlackThresholds)
    brightness: BrightnessThresholds = field(default_factory=BrightnessThresholds)
    blur: BlurThresholds = field(default_factory=BlurThresholds)
    color_cast: ColorCastThresholds = field(default_factory=ColorCastThresholds)
    noise: NoiseThresholds = field(default_factory=NoiseThresholds)
    occlusion: OcclusionThresholds = field(default_factory=OcclusionThresholds)
    frozen: FrozenThresholds = field(default_factory=FrozenThresholds)
    motion: MotionThresholds = field(default_factory=MotionThresholds)
    scene_change: SceneChangeThresholds = field(default_factory=SceneChangeThresholds)
    signal_loss: SignalLossThresholds = field(default_factory=SignalLossThresholds)
    learning: LearningThresholds = field(default_factory=LearningThresholds)


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """
    strategy: how much of the video to decode (see :mod:`analytics.sampler`).
    width: width in pixels the sampled pictures are scaled to before any detector sees
        them. 320 px keeps every detector's cost small and independent of the camera's
        resolution while a face-sized blur or an occluder is still many pixels wide.
    """

    strategy: Strategy = field(default_factory=Strategy.auto)
    width: int = 320
    detectors: DetectorConfig = field(default_factory=DetectorConfig)
    debounce: Mapping[EventType, Debounce] = field(default_factory=lambda: dict(DEFAULT_DEBOUNCE))
