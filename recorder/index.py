"""The recordings index: segments, gaps and evidence holds, in SQLite.

Like the catalog, every statement runs in one worker thread that owns the connection
(:mod:`gateway.sqlite`), so the event loop never waits on disk. The file is in WAL mode:
``sharpeyes export`` and other readers in separate processes read while the gateway writes.

Times are wall-clock seconds since the epoch (the gateway's clock, UTC), as REAL. A gap
with ``end IS NULL`` is open: recording of that camera is interrupted now, since ``start``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from gateway.errors import NotFound
from gateway.sqlite import Database, Schema, transaction

# No segment is longer: the writer cuts at the first keyframe after segment_seconds (at most
# an hour) and a camera's GOP is seconds long.
MAX_SEGMENT_SECONDS = 2 * 3600.0


class GapReason(StrEnum):
    CAMERA_OFFLINE = "camera_offline"  # no packets from the camera (down, unreachable, silent)
    GATEWAY_DOWN = "gateway_down"  # the gateway was not running (stopped or crashed)
    PACKETS_LOST = "packets_lost"  # the hub dropped packets for the recorder (overload)
    DISK_FULL = "disk_full"
    WRITE_ERROR = "write_error"  # the muxer refused the stream; see the log
    RECORDING_OFF = "recording_off"  # the camera's recording policy was off
    FILE_MISSING = "file_missing"  # an indexed segment file vanished from disk


@dataclass(frozen=True, slots=True)
class Segment:
    camera_id: str
    path: str  # relative to the recordings root, POSIX separators
    start: float
    end: float
    duration: float  # media time; may differ from end - start by the camera's clock drift
    bytes: int
    keyframes: tuple[float, ...]  # presentation times, seconds from the segment's start
    packets: int
    video_codec: str
    width: int
    height: int
    audio_codec: str | None
    codec_key: str  # segments with equal keys can be joined without re-encoding
    init_size: int  # ftyp+moov bytes (HLS initialisation section)
    media_end: int  # end of the last fragment (before mfra)
    repaired: bool = False  # recovered after a crash or a full disk
    id: int = 0  # assigned by the index


class IndexedFile(NamedTuple):
    id: int
    bytes: int
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Gap:
    camera_id: str
    start: float
    end: float | None  # None: still open
    reason: GapReason
    id: int = 0


@dataclass(frozen=True, slots=True)
class Hold:
    camera_id: str
    start: float
    end: float
    reason: str
    created_at: float
    released_at: float | None = None
    id: int = 0


_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE segments (
        id          INTEGER PRIMARY KEY,
        camera_id   TEXT NOT NULL,
        path        TEXT NOT NULL UNIQUE,
        start       REAL NOT NULL,
        end         REAL NOT NULL,
        duration    REAL NOT NULL,
        bytes       INTEGER NOT NULL,
        keyframes   TEXT NOT NULL,
        packets     INTEGER NOT NULL,
        video_codec TEXT NOT NULL,
        width       INTEGER NOT NULL,
        height      INTEGER NOT NULL,
        audio_codec TEXT,
        codec_key   TEXT NOT NULL,
        init_size   INTEGER NOT NULL,
        media_end   INTEGER NOT NULL,
        repaired    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX segments_camera_start ON segments (camera_id, start);
    CREATE TABLE gaps (
        id        INTEGER PRIMARY KEY,
        camera_id TEXT NOT NULL,
        start     REAL NOT NULL,
        end       REAL,
        reason    TEXT NOT NULL
    );
    CREATE INDEX gaps_camera_start ON gaps (camera_id, start);
    CREATE TABLE holds (
        id          INTEGER PRIMARY KEY,
        camera_id   TEXT NOT NULL,
        start       REAL NOT NULL,
        end         REAL NOT NULL,
        reason      TEXT NOT NULL,
        created_at  REAL NOT NULL,
        released_at REAL
    );
    CREATE INDEX holds_camera ON holds (camera_id, start);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
SCHEMA = Schema("recordings", _MIGRATIONS)

_SEGMENT_COLUMNS = (
    "camera_id",
    "path",
    "start",
    "end",
    "duration",
    "bytes",
    "keyframes",
    "packets",
    "video_codec",
    "width",
    "height",
    "audio_codec",
    "codec_key",
    "init_size",
    "media_end",
    "repaired",
)
_INSERT_SEGMENT = (
    f"INSERT INTO segments ({', '.join(_SEGMENT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _SEGMENT_COLUMNS)}) "
    # Re-indexing a file (reconcile after a lost insert) replaces its row.
    "ON CONFLICT (path) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SEGMENT_COLUMNS if c != "path")
)
# A hold protects a segment that overlaps it by any amount.
_HELD = (
    "EXISTS (SELECT 1 FROM holds h WHERE h.camera_id = s.camera_id AND h.released_at IS NULL"
    " AND h.start < s.end AND h.end > s.start)"
)


def _segment_row(segment: Segment) -> dict[str, Any]:
    row = {c: getattr(segment, c) for c in _SEGMENT_COLUMNS}
    row["keyframes"] = json.dumps(list(segment.keyframes))
    row["repaired"] = int(segment.repaired)
    return row


def _segment(row: sqlite3.Row) -> Segment:
    values = {c: row[c] for c in _SEGMENT_COLUMNS}
    values["keyframes"] = tuple(json.loads(row["keyframes"]))
    values["repaired"] = bool(row["repaired"])
    return Segment(**values, id=row["id"])


def _gap(row: sqlite3.Row) -> Gap:
    return Gap(row["camera_id"], row["start"], row["end"], GapReason(row["reason"]), row["id"])


def _hold(row: sqlite3.Row) -> Hold:
    return Hold(
        row["camera_id"],
        row["start"],
        row["end"],
        row["reason"],
        row["created_at"],
        row["released_at"],
        row["id"],
    )


class Index:
    """Open with ``await Index.open(path)``; every method is a coroutine."""

    def __init__(self, db: Database[sqlite3.Connection]) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Index:
        return cls(await Database.open(path, SCHEMA, factory=sqlite3.Connection))

    async def close(self) -> None:
        await self._db.close()

    # --- segments ------------------------------------------------------------------------

    async def add_segment(self, segment: Segment) -> Segment:
        """Index a closed segment (again, if its path is indexed already)."""
        return await self._db.call(_add_segment, segment)

    async def segments(self, camera_id: str, start: float, end: float) -> list[Segment]:
        """Segments of ``camera_id`` overlapping [start, end), oldest first."""
        return await self._db.call(_segments, camera_id, start, end)

    async def segment(self, segment_id: int) -> Segment:
        return await self._db.call(_get_segment, segment_id)

    async def files(self, camera_id: str, since: float, before: float) -> dict[str, IndexedFile]:
        """path → (id, bytes, start, end) of the camera's segments that started in
        [since, before): what reconcile compares with the disk, without whole rows."""
        return await self._db.call(_files, camera_id, since, before)

    async def newest_start(self, camera_id: str, before: float) -> float | None:
        return await self._db.call(_newest_start, camera_id, before)

    async def remove_segments(self, ids: Iterable[int]) -> None:
        await self._db.call(_remove_segments, list(ids))

    async def knows(self, camera_id: str) -> bool:
        """Whether anything of ``camera_id`` is indexed (it may have left the catalog)."""
        return await self._db.call(_knows, camera_id)

    async def cameras(self) -> list[str]:
        """Every camera with anything in the index."""
        return await self._db.call(_cameras)

    async def last_end(self, camera_id: str, before: float) -> float | None:
        """Where the camera's record ends: its last segment or closed gap before ``before``."""
        return await self._db.call(_last_end, camera_id, before)

    async def eviction_candidates(
        self, camera_id: str, *, older_than: float, limit: int
    ) -> list[Segment]:
        """The camera's oldest segments that ended before ``older_than`` and no hold covers."""
        return await self._db.call(_candidates, camera_id, older_than, limit)

    # --- gaps ----------------------------------------------------------------------------

    async def open_gap(self, camera_id: str, start: float, reason: GapReason) -> None:
        """Recording of ``camera_id`` stopped at ``start``; no-op if a gap is open already."""
        await self._db.call(_open_gap, camera_id, start, reason)

    async def close_gap(self, camera_id: str, end: float) -> None:
        await self._db.call(_close_gap, camera_id, end)

    async def switch_open_gap(self, camera_id: str, at: float, reason: GapReason) -> None:
        """If a gap is open for another reason, close it at ``at`` and open one for ``reason``."""
        await self._db.call(_switch_open_gap, camera_id, at, reason)

    async def add_gap(self, gap: Gap) -> None:
        await self._db.call(_add_gap, gap)

    async def open_gaps(self) -> list[Gap]:
        return await self._db.call(_open_gaps)

    async def gaps(self, camera_id: str, start: float, end: float) -> list[Gap]:
        return await self._db.call(_gaps, camera_id, start, end)

    async def remove_gaps_before(self, camera_id: str, before: float) -> int:
        return await self._db.call(_remove_gaps_before, camera_id, before)

    # --- holds ---------------------------------------------------------------------------

    async def add_hold(self, hold: Hold) -> Hold:
        return await self._db.call(_add_hold, hold)

    async def holds(self, camera_id: str, *, include_released: bool = False) -> list[Hold]:
        return await self._db.call(_holds, camera_id, include_released)

    async def release_hold(self, camera_id: str, hold_id: int, at: float) -> Hold:
        return await self._db.call(_release_hold, camera_id, hold_id, at)


def _add_segment(db: sqlite3.Connection, segment: Segment) -> Segment:
    with transaction(db, write=True):
        db.execute(_INSERT_SEGMENT, _segment_row(segment))
    return _segment(db.execute("SELECT * FROM segments WHERE path = ?", (segment.path,)).fetchone())


def _segments(db: sqlite3.Connection, camera_id: str, start: float, end: float) -> list[Segment]:
    # The lower bound on start lets SQLite walk (camera_id, start) from near the range
    # instead of from the camera's first segment (90 days of them, for class A).
    rows = db.execute(
        "SELECT * FROM segments WHERE camera_id = ? AND start >= ? AND start < ? AND end > ?"
        " ORDER BY start",
        (camera_id, start - MAX_SEGMENT_SECONDS, end, start),
    )
    return [_segment(row) for row in rows]


def _get_segment(db: sqlite3.Connection, segment_id: int) -> Segment:
    row = db.execute("SELECT * FROM segments WHERE id = ?", (segment_id,)).fetchone()
    if row is None:
        raise NotFound(f"no recorded segment {segment_id}")
    return _segment(row)


def _files(
    db: sqlite3.Connection, camera_id: str, since: float, before: float
) -> dict[str, IndexedFile]:
    rows = db.execute(
        "SELECT path, id, bytes, start, end FROM segments"
        " WHERE camera_id = ? AND start >= ? AND start < ?",
        (camera_id, since, before),
    )
    return {row[0]: IndexedFile(row[1], row[2], row[3], row[4]) for row in rows}


def _newest_start(db: sqlite3.Connection, camera_id: str, before: float) -> float | None:
    row = db.execute(
        "SELECT max(start) FROM segments WHERE camera_id = ? AND start < ?", (camera_id, before)
    ).fetchone()
    return None if row[0] is None else float(row[0])


def _remove_segments(db: sqlite3.Connection, ids: list[int]) -> None:
    with transaction(db, write=True):
        db.executemany("DELETE FROM segments WHERE id = ?", [(i,) for i in ids])


def _knows(db: sqlite3.Connection, camera_id: str) -> bool:
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM segments WHERE camera_id = ?)"
        " OR EXISTS (SELECT 1 FROM gaps WHERE camera_id = ?)",
        (camera_id, camera_id),
    ).fetchone()
    return bool(row[0])


def _cameras(db: sqlite3.Connection) -> list[str]:
    # One index seek per camera (a loose index scan), not a walk over every segment.
    rows = db.execute(
        """
        WITH RECURSIVE c(id) AS (
            SELECT min(camera_id) FROM segments
            UNION ALL
            SELECT (SELECT min(camera_id) FROM segments WHERE camera_id > c.id)
            FROM c WHERE c.id IS NOT NULL
        )
        SELECT id FROM c WHERE id IS NOT NULL UNION SELECT camera_id FROM gaps ORDER BY 1
        """
    )
    return [row[0] for row in rows]


def _last_end(db: sqlite3.Connection, camera_id: str, before: float) -> float | None:
    # Segments do not overlap: the one that starts last ends last.
    segment = db.execute(
        "SELECT end FROM segments WHERE camera_id = ? AND start < ? ORDER BY start DESC LIMIT 1",
        (camera_id, before),
    ).fetchone()
    gap = db.execute(
        "SELECT max(end) FROM gaps WHERE camera_id = ? AND start < ?", (camera_id, before)
    ).fetchone()
    ends = [float(v) for v in (segment[0] if segment else None, gap[0]) if v is not None]
    return max(ends) if ends else None


def _candidates(
    db: sqlite3.Connection, camera_id: str, older_than: float, limit: int
) -> list[Segment]:
    # "start < ?" bounds the index walk: without it a camera with nothing to delete would
    # have all its segments read on every pass.
    rows = db.execute(
        "SELECT * FROM segments s WHERE s.camera_id = ? AND s.start < ? AND s.end < ?"
        f" AND NOT {_HELD} ORDER BY s.start LIMIT ?",
        (camera_id, older_than, older_than, limit),
    )
    return [_segment(row) for row in rows]


def _open_gap(db: sqlite3.Connection, camera_id: str, start: float, reason: GapReason) -> None:
    with transaction(db, write=True):
        if db.execute(
            "SELECT 1 FROM gaps WHERE camera_id = ? AND end IS NULL", (camera_id,)
        ).fetchone():
            return
        db.execute(
            "INSERT INTO gaps (camera_id, start, end, reason) VALUES (?, ?, NULL, ?)",
            (camera_id, start, reason.value),
        )


def _close_gap(db: sqlite3.Connection, camera_id: str, end: float) -> None:
    # A gap that would end before it starts (clock stepped back) ends where it starts.
    db.execute(
        "UPDATE gaps SET end = max(start, ?) WHERE camera_id = ? AND end IS NULL",
        (end, camera_id),
    )


def _switch_open_gap(db: sqlite3.Connection, camera_id: str, at: float, reason: GapReason) -> None:
    with transaction(db, write=True):
        row = db.execute(
            "SELECT reason FROM gaps WHERE camera_id = ? AND end IS NULL", (camera_id,)
        ).fetchone()
        if row is None or row["reason"] == reason.value:
            return
        _close_gap(db, camera_id, at)
        db.execute(
            "INSERT INTO gaps (camera_id, start, end, reason) VALUES (?, ?, NULL, ?)",
            (camera_id, at, reason.value),
        )


def _add_gap(db: sqlite3.Connection, gap: Gap) -> None:
    with transaction(db, write=True):
        db.execute(
            "INSERT INTO gaps (camera_id, start, end, reason) VALUES (?, ?, ?, ?)",
            (gap.camera_id, gap.start, gap.end, gap.reason.value),
        )


def _open_gaps(db: sqlite3.Connection) -> list[Gap]:
    return [_gap(row) for row in db.execute("SELECT * FROM gaps WHERE end IS NULL")]


def _gaps(db: sqlite3.Connection, camera_id: str, start: float, end: float) -> list[Gap]:
    rows = db.execute(
        "SELECT * FROM gaps WHERE camera_id = ? AND start < ? AND (end IS NULL OR end > ?)"
        " ORDER BY start",
        (camera_id, end, start),
    )
    return [_gap(row) for row in rows]


def _remove_gaps_before(db: sqlite3.Connection, camera_id: str, before: float) -> int:
    with transaction(db, write=True):
        cursor = db.execute("DELETE FROM gaps WHERE camera_id = ? AND end < ?", (camera_id, before))
    return cursor.rowcount


def _add_hold(db: sqlite3.Connection, hold: Hold) -> Hold:
    with transaction(db, write=True):
        cursor = db.execute(
            "INSERT INTO holds (camera_id, start, end, reason, created_at) VALUES (?, ?, ?, ?, ?)",
            (hold.camera_id, hold.start, hold.end, hold.reason, hold.created_at),
        )
    return Hold(
        hold.camera_id,
        hold.start,
        hold.end,
        hold.reason,
        hold.created_at,
        None,
        int(cursor.lastrowid or 0),
    )


def _holds(db: sqlite3.Connection, camera_id: str, include_released: bool) -> list[Hold]:
    where = "" if include_released else " AND released_at IS NULL"
    rows = db.execute(
        f"SELECT * FROM holds WHERE camera_id = ?{where} ORDER BY start", (camera_id,)
    )
    return [_hold(row) for row in rows]


def _release_hold(db: sqlite3.Connection, camera_id: str, hold_id: int, at: float) -> Hold:
    with transaction(db, write=True):
        row = db.execute(
            "SELECT * FROM holds WHERE id = ? AND camera_id = ?", (hold_id, camera_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"camera {camera_id} has no hold {hold_id}")
        if row["released_at"] is None:
            db.execute("UPDATE holds SET released_at = ? WHERE id = ?", (at, hold_id))
    return _hold(db.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).fetchone())
