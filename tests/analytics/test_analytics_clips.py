"""Labelled clips: each fault is found, with its onset within 2 s, and nothing else is."""

from __future__ import annotations

from pathlib import Path

import pytest
from analytics_clips import ONSET, VTEST_RECIPES, Recipe, make_fault

from analytics.analyze import analyze_file
from analytics.config import AnalysisConfig
from analytics.events import Event, EventType
from analytics.sampler import Strategy

MAX_ONSET_ERROR = 2.0

# testsrc2 has saturated colour bars and pure black and white areas, so it cannot carry
# a colour cast or a brightness fault the way a camera picture does, and cropping it
# shows flat areas only: those faults are tested on the real footage alone.
SYNTHETIC = ("black", "blur", "frozen", "noise", "occlusion", "signal_loss")


def faults(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type.is_fault]


def check_fault(clip: Path, recipe: Recipe, strategy: Strategy) -> None:
    events = list(analyze_file(clip, AnalysisConfig(strategy=strategy)))
    found = faults(events)
    assert [e.type for e in found] == [EventType(recipe.name)], found
    event = found[0]
    assert abs(event.start - ONSET) <= MAX_ONSET_ERROR, event
    assert 0.0 < event.score <= 1.0
    if event.type is EventType.SIGNAL_LOSS:
        assert event.thumbnail is None
    else:
        assert event.thumbnail is not None and event.thumbnail.startswith(b"\xff\xd8")


@pytest.mark.parametrize("recipe", VTEST_RECIPES, ids=lambda r: r.name)
def test_fault_on_real_footage(recipe: Recipe, vtest_base: Path, clip_dir: Path) -> None:
    check_fault(make_fault(vtest_base, recipe, clip_dir), recipe, Strategy.auto())


@pytest.mark.parametrize(
    "recipe", [r for r in VTEST_RECIPES if r.name in SYNTHETIC], ids=lambda r: r.name
)
def test_fault_on_synthetic_video(recipe: Recipe, synthetic_base: Path, clip_dir: Path) -> None:
    check_fault(make_fault(synthetic_base, recipe, clip_dir), recipe, Strategy.auto())


@pytest.mark.parametrize("strategy", ["keyframes", "fps:2"])
@pytest.mark.parametrize("name", ["frozen", "scene_change"])
def test_temporal_faults_with_other_strategies(
    name: str, strategy: str, vtest_base: Path, clip_dir: Path
) -> None:
    recipe = next(r for r in VTEST_RECIPES if r.name == name)
    check_fault(make_fault(vtest_base, recipe, clip_dir), recipe, Strategy.parse(strategy))


def test_clean_real_footage_gives_motion_only(vtest: Path) -> None:
    # The original file: H.264 High with B-frames, a keyframe every 5 s, AVI timestamps.
    events = list(analyze_file(vtest))
    assert [e.type for e in events] == [EventType.MOTION]
    assert events[0].start < 1.0 and events[0].end > 13.0


def test_clean_synthetic_video_gives_motion_only(synthetic_base: Path) -> None:
    assert [e.type for e in analyze_file(synthetic_base)] == [EventType.MOTION]


@pytest.mark.parametrize("strategy", ["auto", "all"])
def test_same_input_same_events(strategy: str, vtest_base: Path, clip_dir: Path) -> None:
    recipe = next(r for r in VTEST_RECIPES if r.name == "occlusion")
    clip = make_fault(vtest_base, recipe, clip_dir)
    config = AnalysisConfig(strategy=Strategy.parse(strategy))
    first = list(analyze_file(clip, config))
    assert first
    assert list(analyze_file(clip, config)) == first
