"""SQLite off the event loop: one file, one worker thread, versioned schemas.

Every store of the gateway (catalog, alarm devices, recordings index, event log, audit log)
uses this one mechanism rather than its own copy:

- the connection is created in, and only used by, one dedicated worker thread (sqlite3
  connections belong to their thread), so calls run in the order they were made and never
  block the event loop;
- WAL journal, a busy timeout (another process may hold the write lock), foreign keys on,
  freed pages zeroed (``secure_delete``: a replaced secret leaves no copy in the file);
- autocommit mode: :func:`transaction` opens transactions explicitly, ``BEGIN IMMEDIATE``
  for writes so a check and the write that depends on it are atomic;
- each :class:`Schema` is versioned by name in a ``schema_versions`` table, so several
  stores may share one file; a file written by a newer release is refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Concatenate, Generic, Literal, ParamSpec, Self, TypeVar

from gateway.errors import GatewayError

_P = ParamSpec("_P")
_T = TypeVar("_T")
_C = TypeVar("_C", bound=sqlite3.Connection)


class DatabaseError(GatewayError, RuntimeError):
    code = "database_error"


@dataclass(frozen=True, slots=True)
class Schema:
    """``migrations[n]`` takes the schema from version n to n + 1. Append; never edit."""

    name: str
    migrations: Sequence[str]
    # FULL for what must survive a power cut the moment it is acknowledged (events, audit).
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    @property
    def version(self) -> int:
        return len(self.migrations)


@contextmanager
def transaction(db: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def connect(path: Path, schemas: Sequence[Schema], factory: type[_C]) -> _C:
    """Open ``path`` (creating it), set it up and bring every schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, factory=factory)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode = WAL")
        synchronous = "FULL" if any(s.synchronous == "FULL" for s in schemas) else "NORMAL"
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA secure_delete = ON")
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, version INTEGER)"
        )
        for schema in schemas:
            _migrate(db, schema)
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, schema: Schema) -> None:
    with transaction(db, write=True):
        row = db.execute(
            "SELECT version FROM schema_versions WHERE name = ?", (schema.name,)
        ).fetchone()
        version = 0 if row is None else int(row[0])
        if version > schema.version:
            raise DatabaseError(
                f"the {schema.name} schema in this database is version {version}; this "
                f"gateway knows up to {schema.version}: it was written by a newer release"
            )
        for target in range(version, schema.version):
            # executescript would commit the open transaction: run statement by statement.
            for statement in _statements(schema.migrations[target]):
                db.execute(statement)
        db.execute(
            "INSERT INTO schema_versions (name, version) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            (schema.name, schema.version),
        )


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script``: split at the semicolons that end one, not those in a
    comment, a string literal or a trigger's body."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\n;"):
        yield pending  # a trailing comment (harmless) or an unfinished statement (fails)


class Database(Generic[_C]):
    """One SQLite file served by one worker thread. ``await Database.open(...)``."""

    def __init__(self, executor: ThreadPoolExecutor, db: _C, name: str) -> None:
        self._executor = executor
        self._db = db
        self._name = name
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *schemas: Schema,
        factory: type[_C] = sqlite3.Connection,  # type: ignore[assignment]
        setup: Callable[[_C], None] | None = None,
    ) -> Database[_C]:
        """Open and migrate; ``setup`` then runs on the worker thread (e.g. data fixes)."""
        name = "+".join(s.name for s in schemas)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-db")

        def opened() -> _C:
            db = connect(path, schemas, factory)
            if setup is not None:
                try:
                    setup(db)
                except BaseException:
                    db.close()
                    raise
            return db

        try:
            db = await asyncio.get_running_loop().run_in_executor(executor, opened)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, db, name)

    async def call(
        self, work: Callable[Concatenate[_C, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run ``work(connection, ...)`` on the worker thread, after every earlier call."""
        if self._closed:
            raise DatabaseError(f"the {self._name} database is closed")
        loop = asyncio.get_running_loop()
        # A caller that is cancelled stops waiting; its statement still runs, in order.
        return await loop.run_in_executor(self._executor, partial(work, self._db, *args, **kwargs))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Queued behind any calls still pending, which therefore complete first.
        await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
