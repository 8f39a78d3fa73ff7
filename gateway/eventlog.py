"""The event log: every event the gateway raises, persisted before it is published.

A producer calls :meth:`EventLog.record` for a new event and :meth:`EventLog.update` when
the same event changes (a live fault that ends). Each call

1. commits the event's new state to SQLite, marked unpublished (``synchronous = FULL``: a
   committed event survives a crash or a power cut);
2. publishes it on the bus;
3. marks that version published.

Whatever a crash leaves unpublished is published by :meth:`EventLog.start` and, while the
bus is unreachable, retried every ``retry_interval`` seconds: nothing is lost across a
restart or a Redis outage. Delivery is at least once; a consumer recognises a repeat by
``data.event_id`` and ``data.version``.

Ids — one source of truth each:

- **Event ids** belong to the log. An event gets its id when it is first persisted, before
  anything is published: ``<ms>-<seq>``, the form of the bus's ids, strictly increasing in
  the order events are recorded (the millisecond never goes back, even if the clock does).
  The API, thumbnails and every bus message about the event use it (``data.event_id``).
- **Message ids** belong to the bus (the in-process bus's counter, or Redis's ``XADD *``):
  one per publication, the cursor a subscriber resumes from with ``after=``. An event has
  one message per version (a live fault: its onset, then its end), so the two cannot be
  the same id; for an event published once they differ only by when each was taken.

Evidence thumbnails are files (``thumbnails/<UTC day of the start>/<id>.jpg`` under the
log's folder), not rows: SQLite stays small and a day's evidence is pruned with one folder.
All SQLite work runs in one thread that owns the connection (:mod:`gateway.sqlite`): the
event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from gateway.bus import Bus, Event
from gateway.errors import NotFound
from gateway.sqlite import Database, Schema, transaction

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

# _MIGRATIONS[n] takes the schema from version n to n + 1. Append new steps;
# never edit a released one.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id         TEXT PRIMARY KEY,
        ms         INTEGER NOT NULL,
        seq        INTEGER NOT NULL,
        type       TEXT NOT NULL,
        source     TEXT NOT NULL,
        camera     TEXT,
        device     TEXT,
        start_time REAL NOT NULL,
        end_time   REAL,
        score      REAL,
        data       TEXT NOT NULL,
        thumbnail  TEXT,
        version    INTEGER NOT NULL,
        published  INTEGER NOT NULL,
        updated    REAL NOT NULL
    );
    CREATE UNIQUE INDEX events_order ON events (ms, seq);
    CREATE INDEX events_camera ON events (camera, start_time);
    CREATE INDEX events_start ON events (start_time);
    CREATE INDEX events_open ON events (camera, type) WHERE end_time IS NULL;
    CREATE INDEX events_unpublished ON events (ms, seq) WHERE published < version;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
SCHEMA = Schema("eventlog", _MIGRATIONS, synchronous="FULL")  # events must not be lost
THUMBNAILS = "thumbnails"
PUBLISH_TIMEOUT = 5.0  # a bus that hangs must not hold producers: retried later


@dataclass(frozen=True, slots=True)
class Record:
    """An event as the log holds it. ``start``/``end`` are epoch seconds; ``end`` is None
    while the event goes on. ``version`` counts its states; ``published`` says whether the
    latest one is on the bus."""

    id: str
    type: str
    source: str
    camera: str | None
    device: str | None
    start: float
    end: float | None
    score: float | None
    data: Mapping[str, Any] = field(default_factory=dict)
    has_thumbnail: bool = False
    version: int = 1
    published: bool = False

    @property
    def thumbnail_url(self) -> str | None:
        return f"/api/v1/events/{self.id}/thumbnail.jpg" if self.has_thumbnail else None

    def message(self) -> Event:
        """What is published for this version (the bus assigns the message id)."""
        data = {**self.data, "event_id": self.id, "version": self.version}
        if self.has_thumbnail:
            data["thumbnail"] = self.thumbnail_url
        return Event(
            type=self.type,
            source=self.source,
            camera=self.camera,
            device=self.device,
            start=self.start,
            end=self.end,
            score=self.score,
            data=data,
        )


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Record]
    total: int


# --- in the database thread -----------------------------------------------------------------


def _record(row: sqlite3.Row) -> Record:
    return Record(
        id=row["id"],
        type=row["type"],
        source=row["source"],
        camera=row["camera"],
        device=row["device"],
        start=row["start_time"],
        end=row["end_time"],
        score=row["score"],
        data=json.loads(row["data"]),
        has_thumbnail=row["thumbnail"] is not None,
        version=row["version"],
        published=row["published"] >= row["version"],
    )


def _next_id(db: sqlite3.Connection) -> tuple[int, int]:
    last = db.execute("SELECT ms, seq FROM events ORDER BY ms DESC, seq DESC LIMIT 1").fetchone()
    now = int(time.time() * 1000)
    if last is None or now > last["ms"]:
        return now, 0
    return last["ms"], last["seq"] + 1


def _write_thumbnail(root: Path, relative: str, jpeg: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(path.name + ".tmp")
    aside.write_bytes(jpeg)
    os.replace(aside, path)  # an update never leaves half a picture


def _insert(db: sqlite3.Connection, root: Path, event: Event, jpeg: bytes | None) -> Record:
    with transaction(db, write=True):
        ms, seq = _next_id(db)
        event_id = f"{ms}-{seq}"
        thumbnail = None
        if jpeg:
            day = datetime.fromtimestamp(event.start, UTC).strftime("%Y-%m-%d")
            thumbnail = f"{THUMBNAILS}/{day}/{event_id}.jpg"
            # The file before the row: a crash leaves at worst an orphan file, never a row
            # pointing at nothing.
            _write_thumbnail(root, thumbnail, jpeg)
        db.execute(
            "INSERT INTO events (id, ms, seq, type, source, camera, device, start_time,"
            " end_time, score, data, thumbnail, version, published, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?)",
            (
                event_id,
                ms,
                seq,
                event.type,
                event.source,
                event.camera,
                event.device,
                event.start,
                event.end,
                event.score,
                json.dumps(dict(event.data), ensure_ascii=False),
                thumbnail,
                time.time(),
            ),
        )
        return _get(db, event_id)


def _update(
    db: sqlite3.Connection,
    root: Path,
    event_id: str,
    end: float | None,
    score: float | None,
    data: Mapping[str, Any],
    jpeg: bytes | None,
) -> Record:
    with transaction(db, write=True):
        row = _row(db, event_id)
        current, thumbnail = _record(row), row["thumbnail"]
        if jpeg:
            if thumbnail is None:
                day = datetime.fromtimestamp(current.start, UTC).strftime("%Y-%m-%d")
                thumbnail = f"{THUMBNAILS}/{day}/{event_id}.jpg"
            _write_thumbnail(root, thumbnail, jpeg)
        db.execute(
            "UPDATE events SET end_time = ?, score = ?, data = ?, thumbnail = ?,"
            " version = version + 1, updated = ? WHERE id = ?",
            (
                end,
                current.score if score is None else score,
                json.dumps({**current.data, **data}, ensure_ascii=False),
                thumbnail,
                time.time(),
                event_id,
            ),
        )
        return _get(db, event_id)


def _row(db: sqlite3.Connection, event_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM events WHERE id = ?", (event_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"event {event_id} does not exist")
    return row


def _get(db: sqlite3.Connection, event_id: str) -> Record:
    return _record(_row(db, event_id))


def _mark_published(db: sqlite3.Connection, event_id: str, version: int) -> None:
    db.execute(
        "UPDATE events SET published = ? WHERE id = ? AND published < ?",
        (version, event_id, version),
    )


def _unpublished(db: sqlite3.Connection, limit: int) -> list[Record]:
    rows = db.execute(
        "SELECT * FROM events WHERE published < version ORDER BY ms, seq LIMIT ?", (limit,)
    )
    return [_record(row) for row in rows]


def _filters(
    camera: str | None,
    types: Collection[str] | None,
    source: str | None,
    since: float | None,
    until: float | None,
    open_only: bool,
    cameras: Collection[str] | None = None,
    regions: Collection[str] = (),
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if camera is not None:
        clauses.append("camera = ?")
        args.append(camera)
    if cameras is not None:  # a principal's scope (gateway/auth): events of these only,
        # and events of devices that are not cameras (alarm boxes) in these region subtrees
        clauses.append(
            "(camera IN (SELECT value FROM json_each(?)) OR (camera IS NULL AND EXISTS ("
            "SELECT 1 FROM json_each(?) AS r "
            "WHERE json_extract(data, '$.region') GLOB r.value || '*')))"
        )
        args += [json.dumps(sorted(cameras)), json.dumps(sorted(regions))]
    if types:
        clauses.append(f"type IN ({', '.join('?' * len(types))})")
        args.extend(types)
    if source is not None:
        clauses.append("source = ?")
        args.append(source)
    # An event belongs to a range when the two overlap: one that began before ``since``
    # and ends (or goes on) after it is part of the range's story.
    if until is not None:
        clauses.append("start_time <= ?")
        args.append(until)
    if since is not None:
        clauses.append("(end_time IS NULL OR end_time >= ?)")
        args.append(since)
    if open_only:
        clauses.append("end_time IS NULL")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _query(
    db: sqlite3.Connection,
    camera: str | None,
    types: Collection[str] | None,
    source: str | None,
    since: float | None,
    until: float | None,
    open_only: bool,
    limit: int,
    offset: int,
    cameras: Collection[str] | None = None,
    regions: Collection[str] = (),
) -> Page:
    where, args = _filters(camera, types, source, since, until, open_only, cameras, regions)
    with transaction(db, write=True):  # one snapshot for the page and its total
        total = db.execute(f"SELECT COUNT(*) FROM events{where}", args).fetchone()[0]
        rows = db.execute(
            f"SELECT * FROM events{where} ORDER BY start_time DESC, ms DESC, seq DESC"
            " LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
    return Page([_record(row) for row in rows], total)


def _latest(db: sqlite3.Connection, camera: str, source: str | None) -> list[Record]:
    where, args = _filters(camera, None, source, None, None, False)
    rows = db.execute(
        "SELECT * FROM (SELECT *, ROW_NUMBER() OVER"
        " (PARTITION BY type ORDER BY start_time DESC, ms DESC, seq DESC) AS rank"
        f" FROM events{where}) WHERE rank = 1 ORDER BY type",
        args,
    )
    return [_record(row) for row in rows]


def _thumbnail(db: sqlite3.Connection, root: Path, event_id: str) -> Path | None:
    relative = _row(db, event_id)["thumbnail"]
    return None if relative is None else root / relative


def _prune(db: sqlite3.Connection, root: Path, before: float, source: str | None) -> int:
    where = "end_time IS NOT NULL AND end_time < ? AND published >= version"
    args: list[Any] = [before]
    if source is not None:
        where += " AND source = ?"
        args.append(source)
    with transaction(db, write=True):
        files = [
            row[0]
            for row in db.execute(f"SELECT thumbnail FROM events WHERE {where}", args)
            if row[0] is not None
        ]
        count: int = db.execute(f"DELETE FROM events WHERE {where}", args).rowcount
    for relative in files:  # after the commit: a crash leaves files, never dangling rows
        (root / relative).unlink(missing_ok=True)
    folder = root / THUMBNAILS
    if folder.is_dir():
        for day in folder.iterdir():
            if day.is_dir() and not any(day.iterdir()):
                shutil.rmtree(day, ignore_errors=True)
    return count


# --- on the event loop ----------------------------------------------------------------------


class EventLog:
    """``<folder>/events.sqlite3`` and ``<folder>/thumbnails/``; ``await start()`` before use,
    ``await close()`` last (it does not close the bus, which is shared)."""

    def __init__(self, folder: Path, bus: Bus, *, retry_interval: float = 5.0) -> None:
        self.folder = folder
        self.bus = bus
        self.retry_interval = retry_interval
        self._db: Database[sqlite3.Connection] | None = None
        self._publishing = asyncio.Lock()  # publications leave in the order of the log
        self._retry: asyncio.Task[None] | None = None
        self._bus_down = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._db = await Database.open(
            self.folder / "events.sqlite3", SCHEMA, factory=sqlite3.Connection
        )
        await self.publish_pending()
        self._retry = loop.create_task(self._retry_loop(), name="eventlog retry")

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
        async with self._publishing:  # a publication in flight finishes first
            db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def _call(
        self,
        work: Callable[Concatenate[sqlite3.Connection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        if self._db is None:
            raise RuntimeError("the event log is not open")
        return await self._db.call(work, *args, **kwargs)

    # --- writing ------------------------------------------------------------------------

    async def record(self, event: Event, thumbnail: bytes | None = None) -> Record:
        """Persist a new event (its ``id`` is ignored: the log assigns one), then publish it.
        Returns it as persisted; ``published`` is False if the bus could not take it yet."""
        stored = await self._call(_insert, self.folder, event, thumbnail)
        return await self._published(stored)

    async def update(
        self,
        event_id: str,
        *,
        end: float | None,
        score: float | None = None,
        data: Mapping[str, Any] | None = None,
        thumbnail: bytes | None = None,
    ) -> Record:
        """Persist the event's new state (``end``; ``score``, ``thumbnail`` if given; ``data``
        merged into its data), then publish it."""
        stored = await self._call(_update, self.folder, event_id, end, score, data or {}, thumbnail)
        return await self._published(stored)

    async def _published(self, stored: Record) -> Record:
        done = await self.publish_pending()
        return replace(stored, published=True) if stored.id in done else stored

    async def publish_pending(self) -> set[str]:
        """Publish every unpublished version, oldest first; returns the ids published. Stops
        at the first failure (the rest stays in order for the next attempt)."""
        published: set[str] = set()
        async with self._publishing:
            while self._db is not None:
                batch = await self._call(_unpublished, 100)
                if not batch:
                    break
                for stored in batch:
                    try:
                        await asyncio.wait_for(self.bus.publish(stored.message()), PUBLISH_TIMEOUT)
                    except Exception as exc:  # any bus failure: keep the event, retry later
                        if not self._bus_down:
                            log.warning("event bus unavailable, events kept for later: %r", exc)
                        self._bus_down = True
                        return published
                    if self._bus_down:
                        log.info("event bus available again")
                        self._bus_down = False
                    await self._call(_mark_published, stored.id, stored.version)
                    published.add(stored.id)
        return published

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            if self._bus_down:
                await self.publish_pending()

    async def prune(self, before: float, *, source: str | None = None) -> int:
        """Delete ended (and published) events that ended before ``before``, with their
        thumbnails; returns how many."""
        return await self._call(_prune, self.folder, before, source)

    # --- reading ------------------------------------------------------------------------

    async def get(self, event_id: str) -> Record:
        return await self._call(_get, event_id)

    async def query(
        self,
        *,
        camera: str | None = None,
        types: Collection[str] | None = None,
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
        open_only: bool = False,
        limit: int = 100,
        offset: int = 0,
        cameras: Collection[str] | None = None,
        regions: Collection[str] = (),
    ) -> Page:
        """Events overlapping [since, until], newest start first; ``cameras``: only theirs
        (and, with ``regions``, those of other devices in these region subtrees)."""
        return await self._call(
            _query, camera, types, source, since, until, open_only, limit, offset, cameras, regions
        )

    async def latest(self, camera: str, *, source: str | None = None) -> list[Record]:
        """The camera's latest event of each type."""
        return await self._call(_latest, camera, source)

    async def open_events(self, *, source: str | None = None) -> list[Record]:
        """Every event still going on (all cameras)."""
        page = await self.query(source=source, open_only=True, limit=-1)
        return page.items

    async def thumbnail(self, event_id: str) -> Path | None:
        """The event's thumbnail file, None if it has none; NotFound for an unknown event."""
        return await self._call(_thumbnail, self.folder, event_id)
