"""Clips shared by the analytics tests: made once per test session, in a temp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from analytics_clips import VTEST, make_base, make_synthetic


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg CLI is needed to make labelled clips")
    return tmp_path_factory.mktemp("analytics-clips")


@pytest.fixture(scope="session")
def vtest() -> Path:
    if not VTEST.is_file():
        pytest.skip(f"real footage {VTEST} is absent (it lives in shared/media beside the repo)")
    return VTEST


@pytest.fixture(scope="session")
def vtest_base(clip_dir: Path, vtest: Path) -> Path:
    """The first 8 s of the real footage at 640x360, one keyframe per second."""
    return make_base(clip_dir / "vtest.mp4", source=vtest)


@pytest.fixture(scope="session")
def synthetic_base(clip_dir: Path) -> Path:
    return make_synthetic(clip_dir / "synthetic.mp4")
