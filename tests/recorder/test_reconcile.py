"""Start-up reconcile: the index and the disk brought back into agreement, and said so."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from recorder import layout
from recorder.index import GapReason, Index
from recorder.reconcile import reconcile
from recorder.writer import WriterConfig
from tests.recorder.media import CAMERA, synthetic_packets
from tests.recorder.test_writer import T0, record, segments


async def test_reconcile_repairs_indexes_and_drops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "recordings"
    _, events = record(root, synthetic_packets(8, T0), WriterConfig(segment_seconds=2))
    closed = segments(events)
    assert len(closed) == 4
    index = await Index.open(tmp_path / "recordings.sqlite3")
    executor = ThreadPoolExecutor(1)
    try:
        for segment in closed[:3]:  # the fourth insert was lost: an orphan
            await index.add_segment(segment)
        (root / closed[0].path).unlink()  # an operator deleted a file
        with (root / closed[1].path).open("ab") as fh:  # a file changed under the index
            fh.write(b"\0\0\0\x08free")
        # A partial segment from a crash, with not one complete fragment: useless.
        useless = layout.partial_path(root, CAMERA, T0 + 8.5)
        useless.write_bytes(b"\0\0\0\x1cftypisom")
        # And a camera whose index was lost entirely: its files are found again.
        other = "34010200001320000009"
        copy = root / closed[2].path.replace(CAMERA, other)
        copy.parent.mkdir(parents=True)
        shutil.copyfile(root / closed[2].path, copy)

        report = await reconcile(index, root, T0 + 3600, executor, full=True)
        assert (report.missing, report.reindexed, report.orphans, report.discarded) == (1, 1, 2, 1)
        assert not report.unreadable and not useless.exists()
        rows = await index.segments(CAMERA, 0, T0 + 3600)
        assert [r.path for r in rows] == [s.path for s in closed[1:]]
        assert rows[0].bytes == (root / closed[1].path).stat().st_size
        assert rows[-1].packets == closed[3].packets and rows[-1].keyframes == closed[3].keyframes
        gaps = await index.gaps(CAMERA, 0, T0 + 3600)
        assert [(g.reason, g.start, g.end) for g in gaps] == [
            (GapReason.FILE_MISSING, closed[0].start, closed[0].end)
        ]
        assert [r.path for r in await index.segments(other, 0, T0 + 3600)] == [
            copy.relative_to(root).as_posix()
        ]
        assert "missing from disk" in caplog.text and "reconciled (full)" in caplog.text

        # Run again: nothing left to do. A quick pass after a crash opens the gaps.
        again = await reconcile(index, root, T0 + 3600, executor, full=False)
        assert not (again.missing or again.reindexed or again.orphans or again.repaired)
        assert again.gaps_opened == 2
        open_gaps = {g.camera_id: g for g in await index.open_gaps()}
        assert open_gaps[CAMERA].start == closed[3].end
        assert open_gaps[CAMERA].reason is GapReason.GATEWAY_DOWN
    finally:
        await index.close()
        executor.shutdown()
