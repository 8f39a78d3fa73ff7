"""Start-up reconciliation of the index with what is on disk.

After a crash, a power cut or an operator's ``rm``, the index and the files disagree:

- ``.mp4.part`` files are segments the previous run never closed: cut back to their last
  complete fragment, renamed, indexed (or deleted when not one fragment is complete);
- finished files the index does not know (the insert was lost) are probed and indexed;
- files whose size differs from their row are probed again;
- rows whose file is gone are dropped, and the hole becomes a ``file_missing`` gap;
- a camera whose recording ended without a gap being opened (a crash) gets a
  ``gateway_down`` gap from the end of its last segment, closed when recording resumes.

Only files and rows from before ``run_start`` are touched: the current run's recordings
are its own. A *quick* pass, before recording starts, looks at each camera's folders from
its last indexed hour on (where a crash leaves its traces); the *full* pass walks
everything and runs in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from recorder import layout, mp4
from recorder.index import Gap, GapReason, Index, Segment
from recorder.writer import finish_partial

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Report:
    scope: str
    repaired: int = 0  # partial segments cut back and indexed
    discarded: int = 0  # partial segments with no complete fragment, deleted
    orphans: int = 0  # finished files indexed anew
    reindexed: int = 0  # files whose row was out of date
    missing: int = 0  # rows whose file is gone
    unreadable: list[str] = field(default_factory=list)  # left alone, for an operator
    gaps_opened: int = 0
    seconds: float = 0.0

    def changed(self) -> bool:
        return any(
            (
                self.repaired,
                self.discarded,
                self.orphans,
                self.reindexed,
                self.missing,
                self.unreadable,
                self.gaps_opened,
            )
        )


@dataclass(frozen=True, slots=True)
class _Found:
    partials: list[Path]
    finals: dict[str, tuple[Path, int]]  # relative path → (path, size)
    scanned_folders: set[str]  # relative hour folders looked at


def _scan(root: Path, camera_id: str, since: float | None, run_start: float) -> _Found:
    """One camera's folders; with ``since``, only its hour folders from that time on."""
    partials: list[Path] = []
    finals: dict[str, tuple[Path, int]] = {}
    folders: set[str] = set()
    first_hour = "" if since is None else datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d/%H")
    camera_dir = root / camera_id
    days = sorted(p for p in camera_dir.iterdir() if p.is_dir()) if camera_dir.is_dir() else []
    for day_dir in days:
        for hour_dir in sorted(p for p in day_dir.iterdir() if p.is_dir()):
            hour = f"{day_dir.name}/{hour_dir.name}"
            if hour < first_hour:
                continue
            folders.add(f"{camera_id}/{hour}")
            for path in hour_dir.iterdir():
                parsed = layout.parse_path(root, path)
                if parsed is None or parsed.start >= run_start:
                    continue
                if parsed.end is None:
                    partials.append(path)
                else:
                    finals[path.relative_to(root).as_posix()] = (path, path.stat().st_size)
    return _Found(partials, finals, folders)


def _hour_floor(t: float) -> float:
    return t - t % 3600


def _camera_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _describe(root: Path, path: Path) -> Segment | None:
    """Index facts for a finished file found on disk."""
    parsed = layout.parse_path(root, path)
    found = mp4.layout(path)
    facts = mp4.probe(path) if found is not None and found.fragments else None
    if parsed is None or parsed.end is None or found is None or facts is None:
        return None
    return Segment(
        camera_id=parsed.camera_id,
        path=path.relative_to(root).as_posix(),
        start=parsed.start,
        end=parsed.end,
        duration=facts.duration,
        bytes=found.file_size,
        keyframes=facts.keyframes,
        packets=facts.packets,
        video_codec=facts.video_codec,
        width=facts.width,
        height=facts.height,
        audio_codec=facts.audio_codec,
        codec_key=facts.codec_key,
        init_size=found.init_size,
        media_end=found.media_end,
        repaired=not found.closed,
    )


async def reconcile(
    index: Index, root: Path, run_start: float, executor: Executor, *, full: bool
) -> Report:
    began = time.monotonic()
    loop = asyncio.get_running_loop()
    report = Report("full" if full else "quick")
    on_disk = await loop.run_in_executor(executor, _camera_folders, root)
    # One camera at a time: a 90-day archive of many cameras never sits in memory at once.
    for camera_id in sorted(set(on_disk) | set(await index.cameras())):
        await _reconcile_camera(index, root, camera_id, run_start, executor, full, report)
    if not full:
        report.gaps_opened = await _open_crash_gaps(index, run_start)
    report.seconds = round(time.monotonic() - began, 3)
    if report.changed():
        log.warning("recordings reconciled (%s): %s", report.scope, report)
    else:
        log.info(
            "recordings reconciled (%s) in %.3f s: index and disk agree",
            report.scope,
            report.seconds,
        )
    return report


async def _reconcile_camera(
    index: Index,
    root: Path,
    camera_id: str,
    run_start: float,
    executor: Executor,
    full: bool,
    report: Report,
) -> None:
    loop = asyncio.get_running_loop()
    # A crash leaves its traces after the newest indexed segment: the quick pass looks at
    # the hour folders from an hour before it on, and at the rows of those folders only.
    newest = None if full else await index.newest_start(camera_id, run_start)
    since = None if newest is None else _hour_floor(newest - 3600)
    known = await index.files(camera_id, since or 0.0, run_start)
    found = await loop.run_in_executor(executor, _scan, root, camera_id, since, run_start)

    segment: Segment | None
    for path in found.partials:
        try:
            segment = await loop.run_in_executor(executor, finish_partial, root, path)
        except Exception as exc:  # a file so damaged PyAV cannot read it: keep it, say so
            log.error("recordings: cannot repair %s: %s", path, exc)
            report.unreadable.append(str(path))
            continue
        if segment is None:
            report.discarded += 1
            log.warning("recordings: %s held no complete fragment; deleted", path)
            continue
        await index.add_segment(segment)
        report.repaired += 1
        log.warning("recordings: repaired %s (%.1f s kept)", segment.path, segment.duration)

    for relative, (path, size) in found.finals.items():
        row = known.get(relative)
        if row is not None and row.bytes == size:
            continue
        try:
            segment = await loop.run_in_executor(executor, _describe, root, path)
        except Exception as exc:
            segment = None
            log.error("recordings: cannot read %s: %s", path, exc)
        if segment is None:
            report.unreadable.append(str(path))
            continue
        await index.add_segment(segment)
        if row is None:
            report.orphans += 1
        else:
            report.reindexed += 1

    missing = {
        relative: row
        for relative, row in known.items()
        if relative not in found.finals
        and (full or relative.rsplit("/", 1)[0] in found.scanned_folders)
    }
    if missing:
        await index.remove_segments(row.id for row in missing.values())
        for relative, row in missing.items():
            await index.add_gap(Gap(camera_id, row.start, row.end, GapReason.FILE_MISSING))
            log.error("recordings: %s is missing from disk; dropped from the index", relative)
        report.missing += len(missing)


async def _open_crash_gaps(index: Index, run_start: float) -> int:
    """A camera with no open gap stopped without one being recorded: the gateway died."""
    open_gaps = {gap.camera_id for gap in await index.open_gaps()}
    opened = 0
    for camera_id in await index.cameras():
        if camera_id in open_gaps:
            continue
        last = await index.last_end(camera_id, before=run_start)
        if last is not None:
            await index.open_gap(camera_id, last, GapReason.GATEWAY_DOWN)
            opened += 1
    return opened
