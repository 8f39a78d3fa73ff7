"""Detectors, timeline and strategy parsing on synthetic arrays (no decoding)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from analytics.config import DetectorConfig
from analytics.detectors.base import Reading
from analytics.detectors.black import detect_black
from analytics.detectors.blur import detect_blur
from analytics.detectors.brightness import detect_too_bright, detect_too_dark
from analytics.detectors.color_cast import detect_color_cast
from analytics.detectors.frozen import FrozenDetector
from analytics.detectors.motion import MotionDetector
from analytics.detectors.noise import detect_noise
from analytics.detectors.occlusion import detect_occlusion
from analytics.detectors.signal_loss import SignalLossDetector, SignalLossThresholds
from analytics.diagnose import Diagnoser
from analytics.events import FAULTS, EventType
from analytics.frame import Frame
from analytics.sampler import Strategy
from analytics.timeline import Debounce, Timeline

C = DetectorConfig()


def scene(seed: int = 0) -> np.ndarray:
    """A textured grey scene with mid-range brightness, 320x180."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(60, 200, (18, 32), dtype=np.uint8)
    gray = cv2.resize(blocks, (320, 180), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.GaussianBlur(gray, (3, 3), 0), cv2.COLOR_GRAY2BGR)


def test_vocabulary() -> None:
    assert [str(t) for t in EventType] == [
        "black", "frozen", "blur", "occlusion", "color_cast", "noise", "too_dark",
        "too_bright", "scene_change", "signal_loss", "motion",
    ]  # fmt: skip
    assert EventType.MOTION not in FAULTS and len(FAULTS) == 10


def test_single_picture_detectors() -> None:
    good = Frame(scene())
    for reading in (
        detect_black(good, C.black),
        detect_too_dark(good, C.brightness),
        detect_too_bright(good, C.brightness),
        detect_blur(good, C.blur),
        detect_color_cast(good, C.color_cast),
        detect_noise(good, C.noise),
        detect_occlusion(good, C.occlusion),
    ):
        assert not reading.active and 0.0 <= reading.score <= 1.0

    assert detect_black(Frame(np.full((180, 320, 3), 5, np.uint8)), C.black).active
    assert detect_too_dark(Frame(scene() // 5), C.brightness).active
    assert detect_too_bright(Frame(scene() // 8 + 235), C.brightness).active
    assert detect_blur(Frame(cv2.GaussianBlur(scene(), (0, 0), 4)), C.blur).active
    tinted = (scene() * np.array([0.4, 0.7, 1.0])).astype(np.uint8)  # BGR: red-orange
    assert detect_color_cast(Frame(tinted), C.color_cast).active
    rng = np.random.default_rng(1)
    snow = np.clip(scene() + rng.normal(0, 25, (180, 320, 1)), 0, 255).astype(np.uint8)
    assert detect_noise(Frame(snow), C.noise).active
    covered = scene()
    covered[:, :200] = 90
    assert detect_occlusion(Frame(covered), C.occlusion).active


def test_occlusion_ignores_cells_blank_in_the_reference() -> None:
    covered = scene()
    covered[:, :200] = 90
    blank = np.zeros((C.occlusion.rows, C.occlusion.columns), bool)
    blank[:, :5] = True
    assert not detect_occlusion(Frame(covered), C.occlusion, blank).active


def test_frozen_and_motion_compare_consecutive_samples() -> None:
    frozen, motion = FrozenDetector(C.frozen), MotionDetector(C.motion)
    first = Frame(scene())
    assert frozen.update(0.0, first) == motion.update(0.0, first) == Reading(0.0, False)
    assert frozen.update(1.0, Frame(scene())).active  # the same picture again
    moved = scene()
    moved[80:120, 100:130] = 10  # a person walks in
    assert not frozen.update(2.0, Frame(moved)).active
    assert motion.update(1.0, Frame(scene())).active is False
    assert motion.update(2.0, Frame(moved)).active
    # compared with a picture at least `interval` older: 0.1 s later the walker still shows
    assert motion.update(2.1, Frame(scene())).active


def test_scene_change_against_learned_reference() -> None:
    diagnoser = Diagnoser(C)
    for t in (0, 1, 2):
        live = scene()
        live[10:30, 10 + 20 * t : 30 + 20 * t] = 0  # something moves: not frozen
        diagnoser.diagnose(float(t), Frame(live))
    assert diagnoser.reference is not None
    assert not diagnoser.diagnose(3.0, Frame(scene()))[EventType.SCENE_CHANGE].active
    turned = np.roll(scene(), 40, axis=1)
    assert diagnoser.diagnose(4.0, Frame(turned))[EventType.SCENE_CHANGE].active
    diagnoser.relearn()
    assert diagnoser.reference is None


def test_black_hides_the_faults_it_implies() -> None:
    diagnoser = Diagnoser(C)
    black = Frame(np.zeros((180, 320, 3), np.uint8))
    diagnoser.diagnose(0.0, black)
    readings = diagnoser.diagnose(1.0, black)
    assert [k for k, r in readings.items() if r.active] == [EventType.BLACK]


def test_timeline_debounce() -> None:
    timeline = Timeline({EventType.BLUR: Debounce(on_seconds=1.0, off_seconds=2.0)})
    frame = Frame(scene())
    on, off = Reading(0.7, True), Reading(0.1, False)
    verdicts = [on, off, on, on, on, on, off, on, off, off, off, off, off]  # every 0.5 s
    ended = []
    for i, reading in enumerate(verdicts):
        ended += timeline.update(i * 0.5, {EventType.BLUR: reading}, frame)
    # the first blip is too short; the gap at 3.0 s is shorter than off_seconds
    assert [(e.start, e.end) for e in ended] == [(1.0, 4.0)]
    assert ended[0].score == 0.7 and ended[0].thumbnail
    timeline.update(7.0, {EventType.BLUR: on}, frame)
    timeline.update(8.0, {EventType.BLUR: on}, frame)
    assert [(e.start, e.end) for e in timeline.finish(8.5)] == [(7.0, 8.5)]


def test_signal_loss_from_gaps_and_undecodable_packets() -> None:
    detector = SignalLossDetector(SignalLossThresholds(max_gap=1.5))
    assert detector.update(0.0, True) is None
    assert detector.update(1.0, True) is None
    assert detector.update(2.0, False) is None and detector.update(3.0, False) is None
    lost = detector.update(3.5, True)
    assert lost is not None and (lost.start, lost.end) == (1.0, 3.5)
    assert detector.update(7.0, True) is not None  # a plain gap in the stream
    assert detector.finish(7.5) is None


@pytest.mark.parametrize(
    ("text", "kind", "fps"),
    [
        ("auto", "auto", 2.0),
        ("keyframes", "keyframes", 2.0),
        ("all", "all", 2.0),
        ("fps:5", "fps", 5.0),
    ],
)
def test_strategy_parse(text: str, kind: str, fps: float) -> None:
    strategy = Strategy.parse(text)
    assert (strategy.kind, strategy.fps, str(strategy)) == (kind, fps, text)


@pytest.mark.parametrize("text", ["fps", "fps:0", "fps:-1", "fps:x", "keyframes:2", "gop"])
def test_strategy_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Strategy.parse(text)
