"""Retention and a full disk, on a small tmpfs the test mounts: expiry per class, eviction
order under the low-water mark, holds, and recording through ENOSPC without a crash."""

from __future__ import annotations

import asyncio
import errno
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.catalog.models import CameraClass, RecordingPolicy
from recorder import layout, mp4
from recorder.index import GapReason
from recorder.retention import DAY, disk_usage
from recorder.service import CameraStatus, Recorder
from recorder.writer import WriterConfig
from tests.recorder.harness import attach, camera, eventually, recording
from tests.recorder.media import ffprobe_frames, synthetic_packets
from tests.recorder.test_writer import T0, record, segments

OLD_A = "34010200001320000011"  # class A: 90 days
OLD_C = "34010200001320000012"  # class C: 30 days
HELD_B = "34010200001320000013"  # class B: 30 days, under an evidence hold
LIVE = "34010200001320000014"  # class B, recording now
KB = 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root needed): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def plant(root: Path, sample: Path, camera_id: str, days_ago: float, count: int) -> list[str]:
    """Copies of a real segment file, named as recorded ``days_ago`` (2 s apart)."""
    now = time.time()
    names = []
    for i in range(count):
        start = now - days_ago * DAY + i * 2
        path = layout.final_path(root, camera_id, start, start + 2)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, path)
        names.append(path.relative_to(root).as_posix())
    return names


def fill(path: Path, leave: int) -> None:
    """Grow a ballast file until ``leave`` bytes are free (0: until the disk refuses)."""
    chunk = b"\0" * (16 * KB)
    with path.open("ab") as fh:
        try:
            while disk_usage(path.parent)[1] > leave:
                fh.write(chunk)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


async def test_retention_and_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    scratch = tmp_path / "scratch"
    _, events = record(scratch, synthetic_packets(2, T0), WriterConfig(segment_seconds=60))
    sample = scratch / segments(events)[0].path
    size = sample.stat().st_size  # about 40 kB
    planted = {
        OLD_A: plant(small_disk, sample, OLD_A, 80, 8),
        OLD_C: plant(small_disk, sample, OLD_C, 29, 8) + plant(small_disk, sample, OLD_C, 31, 1),
        HELD_B: plant(small_disk, sample, HELD_B, 50, 3),
    }
    settings = {
        "root": small_disk,
        "low_water": 1200 * KB,
        "low_water_percent": 0,
        "full_reserve": 400 * KB,
        "floor_hours": 1,
        "retention_interval": 1,
        "disk_full_retry": 0.5,
    }
    async with recording(tmp_path / "data", **settings) as (hub, recorder):
        index = recorder.index
        # Start-up reconcile indexed the files it found: the planted ones are orphans.
        for cam, names in planted.items():
            assert await paths(recorder, cam) == sorted(names)
        held = planted[HELD_B]
        start = layout.parse_path(small_disk, small_disk / held[0])
        assert start is not None
        await recorder.add_hold(HELD_B, start.start, start.start + 3600, "case 117")
        for cam, cls in ((OLD_A, CameraClass.A), (OLD_C, CameraClass.C), (HELD_B, CameraClass.B)):
            await recorder.apply(camera(cam, "demo://x", cls, RecordingPolicy.OFF))

        # 1. Expiry.
        await recorder.run_retention()
        assert await paths(recorder, OLD_C) == planted[OLD_C][:8]  # the 31-day one expired
        assert await paths(recorder, HELD_B) == held  # 50 days old, class B, but held
        assert await paths(recorder, OLD_A) == planted[OLD_A]

        # 2. Under the low-water mark: class C (29 of its 30 days) gives way before class A
        # (80 of 90), oldest first; the held camera and footage under the floor never do.
        fill(small_disk / "ballast", leave=1200 * KB - 3 * size)
        await recorder.run_retention()
        kept_c = await paths(recorder, OLD_C)
        assert kept_c == planted[OLD_C][8 - len(kept_c) : 8]  # the oldest went
        assert 3 <= 8 - len(kept_c) <= 5
        assert await paths(recorder, OLD_A) == planted[OLD_A]
        assert await paths(recorder, HELD_B) == held

        # 3. The disk fills up for real while a camera records. Retention frees what it
        # may — old footage first, then young footage, never held footage — and the disk is
        # filled again, until a write fails: the recording breaks off, live view goes on.
        live = camera(LIVE, "demo://live?width=320&height=240&fps=15&gop=15")
        live_view = await attach(hub, recorder, live)
        await eventually(lambda: status(recorder).segments >= 2, 15, "live segments")
        deadline = time.monotonic() + 20
        while status(recorder).errors == 0:
            assert time.monotonic() < deadline, "the writer never hit the full disk"
            await asyncio.to_thread(fill, small_disk / "ballast2", 0)
            await asyncio.sleep(0.2)
        seen = len(live_view.packets)
        await eventually(lambda: status(recorder).state == "disk_full", 5, "disk_full status")
        assert (await recorder.disk()).state.value == "full"
        assert 'sharpeyes_recorder_disk_state{state="full"} 1' in await recorder.metrics()
        await asyncio.sleep(1.0)
        assert len(live_view.packets) > seen + 10  # live view never stopped
        assert await paths(recorder, HELD_B) == held
        assert await paths(recorder, OLD_A) == await paths(recorder, OLD_C) == []

        # An operator makes room: recording resumes by itself, and the gap is on record.
        (small_disk / "ballast2").unlink()
        await eventually(lambda: status(recorder).state == "recording", 10, "recording again")
        await recorder.remove(LIVE)
        await live_view.close()
        gaps = [g for g in await index.gaps(LIVE, 0, time.time() + 60) if g.end is not None]
        assert GapReason.DISK_FULL in {g.reason for g in gaps}
        # Reported as an event too: opened when recording stopped, closed when it resumed.
        assert recorder.events is not None
        reported = await recorder.events.query(camera=LIVE, types={"disk_full"})
        assert len(reported.items) == 1 and reported.items[0].end is not None
        assert await paths(recorder, HELD_B) == held

        # Nothing on the disk is corrupt: every file is a playable segment or the ballast.
        check_files(small_disk)
        for row in await index.segments(LIVE, 0, time.time() + 60):
            assert (small_disk / row.path).stat().st_size == row.bytes


def check_files(root: Path) -> None:
    for path in root.rglob("*"):
        if not path.is_file() or path.name.startswith("ballast"):
            continue
        assert path.suffix == ".mp4", path
        found = mp4.layout(path)
        assert found is not None and found.fragments > 0
        if LIVE in path.parts:
            assert ffprobe_frames(path)["video"] > 0


async def paths(recorder: Recorder, camera_id: str) -> list[str]:
    return [s.path for s in await recorder.index.segments(camera_id, 0, time.time() + 60)]


def status(recorder: Recorder) -> CameraStatus:
    found = recorder.recording(LIVE)
    assert found is not None
    return found
