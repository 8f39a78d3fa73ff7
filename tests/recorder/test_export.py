"""Export: one MP4 across segment boundaries, cut at the requested wall-clock times."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from gateway.errors import NotFound
from gateway.hub.normaliser import Normaliser
from recorder import export
from recorder.errors import CodecChange
from recorder.index import Index, Segment
from recorder.writer import WriterConfig
from tests.peers.rtsp import shared_media
from tests.recorder.media import (
    CAMERA,
    ffprobe_frames,
    file_digests,
    file_packets,
    packet_digest,
    synthetic_packets,
)
from tests.recorder.test_writer import T0, record, segments


async def indexed(tmp_path: Path, closed: list[Segment]) -> list[Segment]:
    index = await Index.open(tmp_path / "recordings.sqlite3")
    try:
        for segment in closed:
            await index.add_segment(segment)
        return await index.segments(CAMERA, 0, T0 + 3600)
    finally:
        await index.close()


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """The decoded picture shown at ``seconds`` of ``path`` (presentation time)."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds - 0.001:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{path} has no frame at {seconds}")


def probe_format(path: Path) -> dict[str, str]:
    run = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=start_time,duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: dict[str, str] = json.loads(run.stdout)["format"]
    return result


async def test_export_across_segments_starts_at_the_keyframe_and_cuts_exactly(
    tmp_path: Path,
) -> None:
    packets = file_packets(shared_media("vtest.avi"), T0)
    root = tmp_path / "recordings"
    _, events = record(root, packets, WriterConfig(segment_seconds=4))
    rows = await indexed(tmp_path, segments(events))
    start, end = T0 + 7.0, T0 + 12.0  # inside the second segment, into the third

    plan = export.plan(CAMERA, rows, start, end)
    assert plan.segments == (rows[1], rows[2])
    assert plan.keyframe == rows[1].start + rows[1].keyframes[0] < start
    assert (plan.start, plan.end) == (start, end)
    out = tmp_path / "export.mp4"
    progress: list[float] = []
    export.write(plan, root, out, progress.append)
    assert progress[-1] == 1.0 and progress == sorted(progress)

    # Decoding starts at the keyframe at or before the start: the first sample is that
    # keyframe, then every frame up to the end, across the segment boundary, bit-exact.
    keyframe = next(p for p in packets if p.is_video_keyframe and p.arrival == rows[1].start)
    video = [p for p in packets if p.kind == "video" and keyframe.arrival <= p.arrival < end]
    digests = file_digests(out)
    assert digests["video"] == [packet_digest(p) for p in video]
    # Audio from the start (no pre-roll needed): a contiguous run of the camera's frames.
    audio = [packet_digest(p) for p in packets if p.kind == "audio"]
    n = len(digests["audio"])
    assert n == pytest.approx(5.0 * 44100 / 1024, abs=2)
    assert any(audio[i : i + n] == digests["audio"] for i in range(len(audio) - n + 1))

    # Playback begins at the requested moment: an edit list hides the pre-roll.
    fmt = probe_format(out)
    assert float(fmt["start_time"]) == pytest.approx(0.0, abs=0.001)
    assert float(fmt["duration"]) == pytest.approx(5.0, abs=0.1)
    frames = ffprobe_frames(out)
    assert frames["video"] == pytest.approx(125, abs=2)
    # The first picture shown is the one recorded at 7.0 s, not the keyframe's at 5.16 s.
    source = root / rows[1].path
    assert np.array_equal(frame_at(out, 0.0), frame_at(source, start - rows[1].start))
    assert not np.array_equal(frame_at(out, 0.0), frame_at(source, 0.0))


async def test_export_refuses_ranges_it_cannot_serve_truthfully(tmp_path: Path) -> None:
    normaliser = Normaliser()
    first = synthetic_packets(3, T0, normaliser=normaliser)
    second = synthetic_packets(3, T0 + 3, size=(640, 360), normaliser=normaliser)
    _, events = record(tmp_path / "recordings", first + second, WriterConfig(segment_seconds=60))
    rows = await indexed(tmp_path, segments(events))
    with pytest.raises(CodecChange, match="changed at"):
        export.plan(CAMERA, rows, T0 + 1, T0 + 5)
    with pytest.raises(NotFound):
        export.plan(CAMERA, rows, T0 + 100, T0 + 200)
    # A range that starts before the recording begins is clipped to what exists.
    plan = export.plan(CAMERA, rows, T0 - 60, T0 + 2)
    assert plan.start == plan.keyframe == rows[0].start and plan.end == T0 + 2
