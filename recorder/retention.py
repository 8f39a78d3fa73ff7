"""Retention: how long footage is kept, and what goes first when the disk runs low.

Two rules, applied in one pass every ``interval`` and at once when a writer hits a full disk:

1. Expiry. Each camera keeps its footage ``days`` (per class — A 90, B 30, C 30 — or per
   camera); older segments are deleted.
2. Free space. Under the low-water mark, the oldest segments go first, taken from the
   cameras furthest over their minimum (the age of a camera's oldest footage minus its
   retention: a class C camera with 29 of its 30 days on disk gives way before a class A
   camera with 60 of its 90). Segments younger than the floor are spared unless the disk
   is truly full (below the reserve, or a writer just failed for lack of space).

Segments that overlap an evidence hold are never deleted, by either rule. The row goes
before the file: a crash in between leaves a file the next reconcile re-indexes, never a
row pointing at nothing.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gateway.catalog.models import CameraClass
from recorder.index import Index, Segment

log = logging.getLogger(__name__)
DAY = 86400.0
_BATCH = 200  # candidate segments fetched per camera at a time


class DiskState(StrEnum):
    OK = "ok"
    LOW = "low"  # under the low-water mark: evicting
    FULL = "full"  # writes fail or would: recording is interrupted


@dataclass(frozen=True, slots=True)
class Policy:
    days_by_class: Mapping[CameraClass, float]
    days_by_camera: Mapping[str, float]
    low_water_bytes: int
    low_water_percent: float
    full_reserve_bytes: int
    floor_seconds: float

    def days(self, camera_id: str, camera_class: CameraClass | None) -> float:
        if camera_id in self.days_by_camera:
            return self.days_by_camera[camera_id]
        if camera_class is None:  # removed from the catalog: its footage may be evidence
            return max(self.days_by_class.values())
        return self.days_by_class[camera_class]

    def low_water(self, total: int) -> int:
        return max(self.low_water_bytes, int(total * self.low_water_percent / 100))


@dataclass(slots=True)
class DiskStatus:
    total: int = 0
    free: int = 0
    low_water: int = 0
    state: DiskState = DiskState.OK
    expired_segments: int = 0  # all time
    evicted_segments: int = 0  # all time, for space
    evicted_bytes: int = 0
    last_run: float = 0.0
    last_error: str = ""
    writers_full: bool = False  # a writer hit ENOSPC since the last pass


@dataclass(slots=True)
class Pass:
    expired: int = 0
    evicted: int = 0
    evicted_bytes: int = 0


def disk_usage(path: Path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path``, as a non-root writer sees it."""
    stats = os.statvfs(path)
    return stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


class Retention:
    def __init__(
        self,
        index: Index,
        root: Path,
        policy: Policy,
        executor: Executor,
        in_use: Callable[[], set[str]],
    ) -> None:
        self.index = index
        self.root = root
        self.policy = policy
        self.status = DiskStatus()
        self._executor = executor
        self._in_use = in_use  # segment paths an export or playback is reading
        self._lock = asyncio.Lock()

    async def measure(self) -> DiskStatus:
        loop = asyncio.get_running_loop()
        total, free = await loop.run_in_executor(self._executor, disk_usage, self.root)
        s = self.status
        s.total, s.free, s.low_water = total, free, self.policy.low_water(total)
        if free < self.policy.full_reserve_bytes or s.writers_full:
            s.state = DiskState.FULL
        elif free < s.low_water:
            s.state = DiskState.LOW
        else:
            s.state = DiskState.OK
        return s

    async def run(self, classes: Mapping[str, CameraClass]) -> Pass:
        """One pass of both rules; passes never overlap."""
        async with self._lock:
            now = time.time()
            result = Pass()
            before = self.status.state
            for camera_id in await self.index.cameras():
                days = self.policy.days(camera_id, classes.get(camera_id))
                result.expired += await self._expire(camera_id, now - days * DAY)
            status = await self.measure()
            if status.state is not DiskState.OK:
                await self._free_space(classes, now, result)
            status.writers_full = False
            await self.measure()
            status.expired_segments += result.expired
            status.evicted_segments += result.evicted
            status.evicted_bytes += result.evicted_bytes
            status.last_run = now
            if result.expired or result.evicted:
                log.info(
                    "retention: %d segment(s) expired, %d evicted (%s) for space; %s free",
                    result.expired,
                    result.evicted,
                    _size(result.evicted_bytes),
                    _size(status.free),
                )
            if status.state is not before:
                report = log.info if status.state is DiskState.OK else log.warning
                report(
                    "recordings disk %s: %s free, low-water mark %s%s",
                    status.state.value,
                    _size(status.free),
                    _size(status.low_water),
                    ""
                    if status.state is DiskState.OK
                    else "; what is left is younger than the floor or under hold",
                )
            return result

    def writer_full(self) -> None:
        """A writer got ENOSPC: the next pass may evict young segments too."""
        self.status.writers_full = True

    async def _expire(self, camera_id: str, cutoff: float) -> int:
        count = 0
        while True:
            batch = await self.index.eviction_candidates(camera_id, older_than=cutoff, limit=_BATCH)
            busy = self._in_use()
            batch = [s for s in batch if s.path not in busy]
            if not batch:
                break
            await self._delete(batch)
            count += len(batch)
            if len(batch) < _BATCH:
                break
        await self.index.remove_gaps_before(camera_id, cutoff)
        return count

    async def _free_space(
        self, classes: Mapping[str, CameraClass], now: float, result: Pass
    ) -> None:
        truly_full = self.status.state is DiskState.FULL
        low_water = self.status.low_water
        # What the policy allows: footage older than the floor, up to the low-water mark.
        free = await self._evict(classes, now, now - self.policy.floor_seconds, low_water, result)
        if truly_full and free < self.policy.full_reserve_bytes:
            # Recording has stopped: young footage goes too, but only enough to resume.
            free = await self._evict(classes, now, now, self.policy.full_reserve_bytes, result)

    async def _evict(
        self,
        classes: Mapping[str, CameraClass],
        now: float,
        older_than: float,
        target: int,
        result: Pass,
    ) -> int:
        """Delete segments ended before ``older_than``, the camera furthest over its minimum
        first, until ``target`` bytes are free; returns the free bytes."""
        cameras = await self.index.cameras()
        minimum = {c: self.policy.days(c, classes.get(c)) * DAY for c in cameras}
        queues: dict[str, list[Segment]] = {}
        heap: list[tuple[float, str]] = []  # (-(age of its oldest - its minimum), camera)

        def push(camera_id: str) -> None:
            if queues[camera_id]:
                oldest = queues[camera_id][0]
                heapq.heappush(heap, (minimum[camera_id] - (now - oldest.start), camera_id))

        async def refill(camera_id: str) -> None:
            busy = self._in_use()
            batch = await self.index.eviction_candidates(
                camera_id, older_than=older_than, limit=_BATCH
            )
            queues[camera_id] = [s for s in batch if s.path not in busy]
            push(camera_id)

        for camera_id in cameras:
            await refill(camera_id)
        free = self.status.free
        while heap and free < target:
            _, camera_id = heapq.heappop(heap)
            segment = queues[camera_id].pop(0)
            await self._delete([segment])
            result.evicted += 1
            result.evicted_bytes += segment.bytes
            free = (await self.measure()).free
            if queues[camera_id]:
                push(camera_id)
            else:
                await refill(camera_id)
        return free

    async def _delete(self, segments: list[Segment]) -> None:
        await self.index.remove_segments(s.id for s in segments)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, _unlink, self.root, [s.path for s in segments])


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _unlink(root: Path, relative_paths: list[str]) -> None:
    for relative in relative_paths:
        path = root / relative
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # reconcile will find it again; retention retries then
            log.error("retention: cannot delete %s: %s", path, exc)
            continue
        # Empty hour and day folders go too, so the tree mirrors what is kept.
        for folder in (path.parent, path.parent.parent):
            try:
                folder.rmdir()
            except OSError:
                break
