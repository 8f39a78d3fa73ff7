"""Live analysis without processes: onsets, signal loss on the wall clock, keyframe latency,
the worker's job handling (live batches, joined segments, bad files), the watch folder."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from analytics_clips import ENCODE, ONSET, VTEST_RECIPES, ffmpeg, make_fault
from test_analytics_packets import ARRIVAL, hub_packets

from adapters.demo import DemoSource
from analytics.analyze import Analysis
from analytics.config import AnalysisConfig
from analytics.detectors.base import Reading
from analytics.events import Event, EventType, Onset
from analytics.frame import Frame
from analytics.messages import (
    Forget,
    Found,
    LiveBatch,
    LiveStart,
    ReferenceChanged,
    Relearn,
    Result,
    Segment,
    SegmentDone,
    Shutdown,
    Stopped,
)
from analytics.sampler import PacketDecoder, Picture, Pulse, Strategy
from analytics.timeline import Debounce, Timeline
from analytics.watch import WatchFolder
from analytics.worker import Worker, WorkerConfig
from gateway.errors import InvalidInput
from gateway.hub.packet import Packet
from recorder.layout import final_path

CAM = "34150200001320000001"
T0 = 1_700_000_000.0


def test_timeline_reports_onsets_then_the_same_event_ended() -> None:
    frame = Frame(np.full((90, 160, 3), 120, np.uint8))
    on, off = Reading(0.8, True), Reading(0.1, False)
    rules = {EventType.BLUR: Debounce(on_seconds=1.0, off_seconds=2.0)}
    live, files = Timeline(rules, CAM, onsets=True), Timeline(rules, CAM)
    reports: list[Onset | Event] = []
    for i, reading in enumerate([on, on, on, off, off, off, off, off]):  # every 0.5 s
        reports += live.update(i * 0.5, {EventType.BLUR: reading}, frame)
        assert not any(
            isinstance(r, Onset) for r in files.update(i * 0.5, {EventType.BLUR: reading}, frame)
        )
    onset, ended = reports
    assert isinstance(onset, Onset) and isinstance(ended, Event)
    assert (onset.type, onset.start, onset.camera) == (EventType.BLUR, 0.0, CAM)
    assert (ended.start, ended.end) == (0.0, 1.5)
    assert onset.thumbnail is not None and onset.thumbnail.startswith(b"\xff\xd8")


def good(t: float, seed: int) -> Picture:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(60, 200, (18, 32, 1), dtype=np.uint8).repeat(3, axis=2)
    return Picture(t, np.ascontiguousarray(blocks.repeat(10, axis=0).repeat(10, axis=1)))


def test_a_silent_live_source_loses_its_signal_on_the_wall_clock() -> None:
    analysis = Analysis(AnalysisConfig(), camera=CAM, onsets=True)
    analysis.resume(T0)
    black = Picture(0.0, np.zeros((180, 320, 3), np.uint8))
    reports = []
    for k in range(5):  # black pictures, one a second
        reports += analysis.feed(Pulse(T0 + k))
        reports += analysis.feed(Picture(T0 + k, black.image))
        reports += analysis.check(T0 + k + 0.5)
    assert [(type(r), r.type) for r in reports] == [(Onset, EventType.BLACK)]
    assert analysis.check(T0 + 5.0) == []  # 1 s of silence is no loss (max_gap 1.5 s)
    silent = analysis.check(T0 + 6.0)
    # The picture event ends with the last picture; the loss began with the last packet.
    assert [(type(r), r.type, r.start) for r in silent] == [
        (Event, EventType.BLACK, T0),
        (Onset, EventType.SIGNAL_LOSS, T0 + 4),
    ]
    assert analysis.check(T0 + 9.0) == []  # reported once per gap
    back = analysis.feed(Pulse(T0 + 10.0))
    assert [(type(r), r.type, r.start, r.end) for r in back] == [  # type: ignore[union-attr]
        (Event, EventType.SIGNAL_LOSS, T0 + 4, T0 + 10.0)
    ]


def test_a_deliberate_pause_is_no_loss_but_a_reported_loss_stays_open() -> None:
    analysis = Analysis(AnalysisConfig(), camera=CAM, onsets=True)
    analysis.resume(T0)
    for k in range(3):
        analysis.feed(Pulse(T0 + k))
        analysis.feed(good(T0 + k, k))
    analysis.resume(T0 + 300.0)  # the next interval window
    assert analysis.check(T0 + 301.0) == []
    assert analysis.feed(Pulse(T0 + 301.0)) == []
    # A window in which the camera never sends anything: a loss from the window's start.
    analysis.resume(T0 + 600.0)
    *ended_motion, onset = analysis.check(T0 + 602.0)
    assert [e.type for e in ended_motion] == [EventType.MOTION]  # the pictures stopped
    assert isinstance(onset, Onset) and onset.start == T0 + 600.0
    analysis.resume(T0 + 900.0)  # still unknown: the loss goes on across the pause
    assert analysis.check(T0 + 902.0) == []
    (ended,) = analysis.finish()
    assert (ended.type, ended.start, ended.end) == (EventType.SIGNAL_LOSS, T0 + 600.0, T0 + 902.0)


@pytest.fixture(scope="module")
def b_frame_packets(vtest_base: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Packet]:
    """The clean clip as a camera with B-frames streams it (High profile, 2 B-frames)."""
    folder = tmp_path_factory.mktemp("bframes")
    clip = folder / "bframes.mp4"
    ffmpeg("-i", str(vtest_base), *ENCODE, "-profile:v", "high", "-bf", "2", "-g", "25", str(clip))
    return hub_packets(clip, folder)


def test_keyframes_are_not_a_gop_late_on_streams_with_b_frames(
    b_frame_packets: list[Packet],
) -> None:
    assert any(p.pts != p.dts for p in b_frame_packets)  # B-frames indeed
    decoder = PacketDecoder(Strategy.parse("keyframes"), 320)
    for packet in b_frame_packets:
        pictures = [s for s in decoder.feed(packet) if isinstance(s, Picture)]
        # each keyframe's picture comes out with the keyframe itself, not a GOP later
        assert [p.t for p in pictures] == ([packet.arrival] if packet.keyframe else [])


# --- the worker, in this process ------------------------------------------------------------


@pytest.fixture
def worker(tmp_path: Path) -> tuple[Worker, list[Result]]:
    results: list[Result] = []
    config = AnalysisConfig()
    return Worker(WorkerConfig(0, config, config, tmp_path / "references"), results.append), results


def found(results: list[Result]) -> list[Onset | Event]:
    return [r.report for r in results if isinstance(r, Found) and r.report.type.is_fault]


def batches(packets: list[Packet]) -> list[LiveBatch]:
    """One batch per second of arrivals, keyframes sent and the rest as times (keyframes)."""
    out, items, second = [], [], int(packets[0].arrival)
    for packet in packets:
        if int(packet.arrival) != second:
            out.append(LiveBatch(CAM, float(second + 1), tuple(items)))
            items, second = [], int(packet.arrival)
        items.append(packet if packet.keyframe else packet.arrival)
    out.append(LiveBatch(CAM, float(second + 1), tuple(items)))
    return out


def test_worker_live_black_begins_then_ends(
    worker: tuple[Worker, list[Result]], vtest_base: Path, clip_dir: Path, tmp_path: Path
) -> None:
    work, results = worker
    clip = make_fault(vtest_base, next(r for r in VTEST_RECIPES if r.name == "black"), clip_dir)
    assert work.handle(LiveStart(CAM, ARRIVAL))
    for batch in batches(hub_packets(clip, tmp_path)):
        assert work.handle(batch)
    onset = found(results)
    assert [type(r) for r in onset] == [Onset] and onset[0].type is EventType.BLACK
    assert abs(onset[0].start - (ARRIVAL + ONSET)) <= 2.0
    assert (tmp_path / "references" / f"{CAM}.npz").is_file()  # learned from the clean start
    assert any(isinstance(r, ReferenceChanged) and r.at is not None for r in results)
    work.handle(Forget(CAM))  # no longer sampled: the open event ends
    ended = found(results)[-1]
    assert isinstance(ended, Event) and ended.start == onset[0].start
    work.handle(Relearn(CAM))
    assert not (tmp_path / "references" / f"{CAM}.npz").exists()
    assert not work.handle(Shutdown()) and isinstance(results[-1], Stopped)


@pytest.fixture(scope="module")
def all_black(clip_dir: Path) -> Path:
    out = clip_dir / "all-black.mp4"
    if not out.exists():
        ffmpeg("-f", "lavfi", "-i", "color=black:s=640x360:r=25:d=4", *ENCODE, "-g", "25", str(out))
    return out


def test_worker_joins_consecutive_segments_and_goes_on_after_a_bad_one(
    worker: tuple[Worker, list[Result]],
    vtest_base: Path,
    clip_dir: Path,
    all_black: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    work, results = worker
    clip = make_fault(vtest_base, next(r for r in VTEST_RECIPES if r.name == "black"), clip_dir)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    work.handle(Segment(CAM, str(clip), T0, T0 + 8.0))
    work.handle(Segment(CAM, str(all_black), T0 + 8.0, T0 + 12.0))  # continues: still black
    (onset,) = found(results)
    assert isinstance(onset, Onset) and abs(onset.start - (T0 + ONSET)) <= 2.0
    with caplog.at_level(logging.WARNING, logger="analytics.worker"):
        work.handle(Segment(CAM, str(bad), T0 + 12.0, T0 + 20.0))
    assert "bad.mp4" in caplog.text and "corrupt_media" in caplog.text
    # The bad file ends the analysis: the black event ends with the last good picture.
    ended = found(results)[-1]
    assert isinstance(ended, Event) and ended.start == onset.start
    assert T0 + 11.0 <= ended.end <= T0 + 12.0
    done = [r for r in results if isinstance(r, SegmentDone)]
    assert [(Path(d.path).name, d.error_code) for d in done] == [
        (clip.name, None),
        (all_black.name, None),
        ("bad.mp4", "corrupt_media"),
    ]
    work.handle(Segment(CAM, str(clip), T0 + 100.0, T0 + 108.0))  # the scan goes on
    assert isinstance(results[-1], SegmentDone) and results[-1].error_code is None
    assert [type(r) for r in found(results)][-1] is Onset
    work.sweep(time.monotonic() + 3600)  # no next segment came: its events end
    assert isinstance(found(results)[-1], Event)


def test_watch_folder(tmp_path: Path) -> None:
    root, state = tmp_path / "watch", tmp_path / "state" / "watch.json"
    named = final_path(root, CAM, T0, T0 + 60)  # the recorder's own layout
    plain = root / CAM / "upload" / "clip.mp4"
    stray = root / "misc" / "notes.mp4"
    writing = root / CAM / "now.mp4.part"
    for path in (named, plain, stray, writing):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        time.sleep(0.01)  # distinct change times, in this order
    now = time.time()
    watch = WatchFolder(root, state, settle=5.0)
    assert watch.scan(now) == []  # everything is younger than 5 s
    arrivals = watch.scan(now + 10)
    assert [(a.path, a.camera, a.start, a.end) for a in arrivals] == [
        (named, CAM, T0, T0 + 60),
        (plain, CAM, None, None),
    ]  # the stray file (no camera folder) is skipped, the .part one never taken
    assert watch.scan(now + 10) == []  # taken once
    watch.done(str(plain))  # done out of order: the cursor waits for the older one
    assert not state.exists()
    watch.done(str(named))
    again = WatchFolder(root, state, settle=5.0)  # a restart
    assert again.scan(now + 10) == []
    later = root / CAM / "later.mp4"
    later.write_bytes(b"x")
    os.utime(later, (now - 60, now - 60))  # a copy that kept an old modification time
    assert [a.path for a in again.scan(time.time())] == [later]


def test_demo_source_induces_faults_on_a_healthy_scene() -> None:
    def pictures(url: str, frames: range) -> list[np.ndarray]:
        source = DemoSource(url)
        out = []
        for n in frames:
            source._frame_index = n  # the frame due n / fps seconds after opening
            out.append(source._picture())
        return out

    clean = pictures("demo://d?width=320&height=180&fps=10", range(0, 30, 5))
    analysis = Analysis(AnalysisConfig(), camera=CAM)
    for k, image in enumerate(clean):
        analysis.feed(Picture(k * 0.5, image))
    assert analysis.diagnoser.reference is not None  # no fault: a reference was learned
    black = pictures("demo://d?width=320&height=180&fps=10&fault=black&fault_after=1", range(8, 13))
    assert [bool(p.any()) for p in black] == [True, True, False, False, False]
    frozen = "demo://d?width=320&height=180&fps=10&fault=frozen&fault_after=1&fault_for=1"
    still = pictures(frozen, range(10, 25, 3))
    assert all((p == still[0]).all() for p in still[:4]) and not (still[4] == still[0]).all()
    for wrong in ("fault=smoke", "fault=silent", "fault=silent&fault_for=600"):
        with pytest.raises(InvalidInput):
            DemoSource(f"demo://d?{wrong}")
