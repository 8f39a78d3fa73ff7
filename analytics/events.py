"""The analytics vocabulary: event types and the event record.

The type names are a fixed, public vocabulary (API, bus, CLI output, Prometheus labels):
add new ones, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    BLACK = "black"  # 黑屏
    FROZEN = "frozen"  # 画面冻结
    BLUR = "blur"  # 模糊/虚焦
    OCCLUSION = "occlusion"  # 遮挡
    COLOR_CAST = "color_cast"  # 偏色
    NOISE = "noise"  # 雪花/噪声
    TOO_DARK = "too_dark"  # 亮度异常 (过暗)
    TOO_BRIGHT = "too_bright"  # 亮度异常 (过亮)
    SCENE_CHANGE = "scene_change"  # 场景变更: the camera was moved or turned
    SIGNAL_LOSS = "signal_loss"  # 信号丢失: no decodable video at all
    MOTION = "motion"  # not a fault: something moves in the picture

    @property
    def is_fault(self) -> bool:
        return self is not EventType.MOTION


FAULTS = frozenset(t for t in EventType if t.is_fault)


@dataclass(frozen=True, slots=True)
class Event:
    """One interval during which a condition held.

    ``start`` and ``end`` are in the clock of the frame source: seconds from the start of
    the file for recordings, the gateway's wall clock for live streams. ``score`` is the
    peak score in [0, 1] seen during the event. ``thumbnail`` is the JPEG of the sampled
    picture with the peak score, the evidence an operator looks at; it is ``None`` for
    ``signal_loss``, which by definition has no picture.
    """

    type: EventType
    start: float
    end: float
    score: float
    thumbnail: bytes | None = None
    camera: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Onset:
    """An event that has begun and is still going on, reported by live analysis as soon as
    debouncing confirms it so that an operator learns of a fault while it lasts.

    The :class:`Event` that ends it follows later with the same ``type``, ``camera`` and
    ``start``; ``score`` and ``thumbnail`` are those seen so far.
    """

    type: EventType
    start: float
    score: float
    thumbnail: bytes | None = None
    camera: str | None = None


Report = Onset | Event  # what an analysis reports: a begun event, or an ended one
