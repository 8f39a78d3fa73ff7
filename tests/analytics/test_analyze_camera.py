"""``sharpeyes analyze CAMERA_ID``: a live camera through the gateway's own code path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main

DEMO_ID = "11010500001320000001"


def test_analyze_a_live_camera_prints_events_as_they_begin_and_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sharpeyes.yaml"
    config.write_text(
        'demo: {url: "demo://cli?width=320&height=180&fps=10&gop=10'
        '&fault=black&fault_after=4&fault_for=3"}\n'
    )
    argv = ["analyze", DEMO_ID, "--seconds", "9", "--json", "--config", str(config)]
    status = main([*argv, "--data", str(tmp_path / "data"), "--evidence", str(tmp_path / "ev")])
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    black = [line for line in lines if line["type"] == "black"]
    assert [line["end"] is None for line in black] == [True, False]  # begins, then ends
    assert black[0]["start"] == black[1]["start"] and black[0]["camera"] == DEMO_ID
    assert 2.0 <= black[1]["end"] - black[1]["start"] <= 5.0
    assert Path(black[0]["thumbnail"]).read_bytes()[:2] == b"\xff\xd8"
    assert {line["type"] for line in lines} <= {"black", "motion"}


def test_analyze_an_unknown_camera_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["analyze", "34150200001320000077", "--data", str(tmp_path)])
    assert status == 1
    assert "34150200001320000077 is neither in" in capsys.readouterr().err
