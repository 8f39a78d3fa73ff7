"""``security.sqlite3``: users, API tokens and the audit log, in one file beside the catalog.

One worker thread owns the connection (:mod:`gateway.sqlite`): the event loop never waits
on disk and statements run one at a time. Writes take the write lock up front
(``BEGIN IMMEDIATE``, :func:`gateway.sqlite.transaction`), so the CLI can add a user or
append to the audit chain while the gateway runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from gateway import sqlite
from gateway.sqlite import Database, Schema

_P = ParamSpec("_P")
_T = TypeVar("_T")

FILE_NAME = "security.sqlite3"

# _MIGRATIONS[n] takes the schema from version n to n + 1; append, never edit.
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
# synchronous = FULL: audit rows are evidence, fsync each commit.
SCHEMA = Schema("security", _MIGRATIONS, synchronous="FULL")


def connect(path: Path) -> sqlite3.Connection:
    """Open and migrate (blocking). Used directly by the CLI."""
    return sqlite.connect(path, [SCHEMA], sqlite3.Connection)


class SecurityDb:
    """The connection and its thread. Create with ``await SecurityDb.open(data_dir)``."""

    def __init__(self, db: Database[sqlite3.Connection]) -> None:
        self._db = db

    @classmethod
    async def open(cls, data_dir: Path) -> SecurityDb:
        return cls(await Database.open(data_dir / FILE_NAME, SCHEMA, factory=sqlite3.Connection))

    async def call(
        self,
        work: Callable[Concatenate[sqlite3.Connection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        return await self._db.call(work, *args, **kwargs)

    async def close(self) -> None:
        await self._db.close()
