"""``sharpeyes analyze``: the subcommand as registered, and ``python -m analytics.cli``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from analytics_clips import VTEST_RECIPES, make_fault

from analytics.cli import register

ROOT = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sharpeyes")
    register(top.add_subparsers(dest="command", required=True))
    return top


def test_registered_subcommand_prints_json_lines(
    vtest_base: Path, clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_fault(vtest_base, next(r for r in VTEST_RECIPES if r.name == "black"), clip_dir)
    evidence = tmp_path / "evidence"
    args = parser().parse_args(["analyze", str(clip), "--json", "--evidence", str(evidence)])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert {r["type"] for r in records} == {"motion", "black"}
    for record in records:
        assert {"type", "start", "end", "score", "file"} <= record.keys()
        assert 0.0 <= record["start"] <= record["end"] <= 8.0
        assert Path(record["thumbnail"]).read_bytes().startswith(b"\xff\xd8")
    assert err == ""  # no progress bar when stderr is not a terminal


def test_bad_strategy_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["analyze", "x.mp4", "--strategy", "fps:0"])
    assert exit_info.value.code == 2
    assert "positive rate" in capsys.readouterr().err


def test_module_entry_point_goes_on_after_a_bad_file(vtest_base: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    result = subprocess.run(
        [sys.executable, "-m", "analytics.cli", str(bad), str(vtest_base), "--strategy", "fps:2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "bad.mp4" in result.stderr and "[corrupt_media]" in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and "motion" in lines[0] and str(vtest_base) in lines[0]
