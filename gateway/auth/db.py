"""``security.sqlite3``: users, API tokens and the audit log, in one file beside the catalog.

One worker thread owns the connection (as in the catalog store): the event loop never waits
on disk and statements run one at a time. Writes take the write lock up front
(``BEGIN IMMEDIATE``), so the CLI can add a user or append to the audit chain while the
gateway runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

FILE_NAME = "security.sqlite3"

# _MIGRATIONS[n] takes ``PRAGMA user_version`` from n to n + 1; append, never edit.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        username    TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role        TEXT NOT NULL,
        regions     TEXT,            -- JSON list of region codes; NULL: every region
        classes     TEXT,            -- JSON list of camera classes; NULL: every class
        password    TEXT,            -- Argon2id PHC string; NULL: tokens only
        disabled    INTEGER NOT NULL DEFAULT 0,
        created_at  REAL NOT NULL,
        created_by  TEXT NOT NULL
    );
    CREATE TABLE tokens (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        digest       TEXT NOT NULL UNIQUE,  -- SHA-256 of the token: the token is not kept
        hint         TEXT NOT NULL,         -- its first characters, to recognise it
        created_at   REAL NOT NULL,
        expires_at   REAL,
        revoked_at   REAL,
        last_used_at REAL
    );
    CREATE INDEX tokens_user ON tokens (user_id);
    CREATE TABLE audit (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        at       TEXT NOT NULL,
        actor    TEXT NOT NULL,
        role     TEXT NOT NULL,
        via      TEXT NOT NULL,
        address  TEXT NOT NULL,
        action   TEXT NOT NULL,
        outcome  TEXT NOT NULL,
        camera   TEXT,
        region   TEXT,
        detail   TEXT NOT NULL,
        prev     TEXT NOT NULL,
        hash     TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_camera ON audit (camera);
    -- Append-only for the gateway itself; someone with the file can drop these, which is
    -- what the hash chain is for (sharpeyes audit verify).
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open and migrate (blocking). Also used directly by the CLI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")  # audit rows are evidence: fsync each commit
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{path} has schema version {version}; this gateway knows up to "
                f"{SCHEMA_VERSION}: it was written by a newer release"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            try:
                db.executescript(
                    f"BEGIN IMMEDIATE; {_MIGRATIONS[target - 1]}; "
                    f"PRAGMA user_version = {target}; COMMIT;"
                )
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def transaction(db: sqlite3.Connection, *, write: bool = True) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class SecurityDb:
    """The connection and its thread. Create with ``await SecurityDb.open(data_dir)``."""

    def __init__(self, executor: ThreadPoolExecutor, db: sqlite3.Connection) -> None:
        self._executor = executor
        self._db = db
        self._closed = False

    @classmethod
    async def open(cls, data_dir: Path) -> SecurityDb:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="security-db")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, connect, data_dir / FILE_NAME)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, db)

    async def call(
        self,
        work: Callable[Concatenate[sqlite3.Connection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        if self._closed:
            raise RuntimeError("the security database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(work, self._db, *args, **kwargs))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=False)
