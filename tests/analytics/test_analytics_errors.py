"""Files that cannot be analysed give a clear error; a scan of several goes on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from analytics_clips import ffmpeg

from analytics.analyze import analyze_file, analyze_files
from analytics.errors import (
    AnalysisError,
    CorruptMedia,
    MediaNotFound,
    NoVideoStream,
    TruncatedMedia,
)
from analytics.events import EventType
from gateway.errors import GatewayError


def half(path: Path, out: Path) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.fixture(scope="module")
def remuxed(vtest_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clean clip in the containers a recorder may leave behind."""
    out = tmp_path_factory.mktemp("remuxed")
    variants = {
        "mp4": ["-movflags", "+faststart"],
        "fmp4": ["-movflags", "+frag_keyframe+empty_moov"],
        "mkv": [],
    }
    paths = {}
    for name, flags in variants.items():
        path = out / f"clip-{name}.{'mkv' if name == 'mkv' else 'mp4'}"
        ffmpeg("-i", str(vtest_base), "-c", "copy", *flags, str(path))
        paths[name] = path
    return paths


def test_errors_are_gateway_errors_and_builtins() -> None:
    assert issubclass(CorruptMedia, GatewayError) and issubclass(CorruptMedia, ValueError)
    assert issubclass(TruncatedMedia, CorruptMedia) and issubclass(TruncatedMedia, EOFError)
    assert issubclass(MediaNotFound, FileNotFoundError)
    assert {CorruptMedia.code, TruncatedMedia.code, NoVideoStream.code, MediaNotFound.code} == {
        "corrupt_media",
        "truncated_media",
        "no_video_stream",
        "media_not_found",
    }


def test_not_media(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(CorruptMedia, match="not a readable media file"):
        list(analyze_file(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound):
        list(analyze_file(tmp_path / "nope.mp4"))


def test_audio_only(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", str(path))
    with pytest.raises(NoVideoStream):
        list(analyze_file(path))


def test_mp4_cut_before_its_index(vtest_base: Path, tmp_path: Path) -> None:
    # ffmpeg writes the moov box last: half a file has no index at all.
    with pytest.raises(CorruptMedia):
        list(analyze_file(half(vtest_base, tmp_path / "half.mp4")))


@pytest.mark.parametrize("name", ["mp4", "fmp4", "mkv"])
def test_truncated(name: str, remuxed: dict[str, Path], tmp_path: Path) -> None:
    cut = half(remuxed[name], tmp_path / f"half-{remuxed[name].name}")
    assert [e.type for e in analyze_file(remuxed[name])] == [EventType.MOTION]
    events = []
    with pytest.raises(TruncatedMedia):
        events.extend(analyze_file(cut))
    # what could be read was analysed before the error
    assert [e.type for e in events] in ([], [EventType.MOTION])


def test_scan_goes_on_after_a_bad_file(
    vtest_base: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    paths = [bad, tmp_path / "missing.mkv", vtest_base]
    with caplog.at_level(logging.WARNING, logger="analytics.analyze"):
        results = list(analyze_files(paths))
    assert {path for path, _ in results} == {vtest_base}
    assert "bad.mp4" in caplog.text and "corrupt_media" in caplog.text
    assert "missing.mkv" in caplog.text

    failed: list[tuple[Path, AnalysisError]] = []
    list(analyze_files(paths, on_error=lambda path, exc: failed.append((path, exc))))
    assert [(path, type(exc)) for path, exc in failed] == [
        (bad, CorruptMedia),
        (paths[1], MediaNotFound),
    ]
