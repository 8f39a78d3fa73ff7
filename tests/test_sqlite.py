"""The shared SQLite worker: ordering, migrations per schema, refusal of newer files."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.sqlite import Database, DatabaseError, Schema, transaction

ONE = Schema("one", ["CREATE TABLE a (x INTEGER)"])
TWO = Schema("two", ["CREATE TABLE b (y TEXT)", "ALTER TABLE b ADD COLUMN z TEXT"])


def insert(db: sqlite3.Connection, x: int) -> int:
    with transaction(db, write=True):
        db.execute("INSERT INTO a VALUES (?)", (x,))
    return threading.get_ident()


def read(db: sqlite3.Connection) -> list[int]:
    return [row[0] for row in db.execute("SELECT x FROM a ORDER BY rowid")]


async def test_calls_run_in_order_on_one_thread_off_the_loop(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "d.sqlite3", ONE) as db:
        threads = await asyncio.gather(*(db.call(insert, i) for i in range(50)))
        assert len(set(threads)) == 1 and threads[0] != threading.get_ident()
        assert await db.call(read) == list(range(50))


async def test_two_schemas_share_a_file_and_migrate_forward(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    db = await Database.open(path, ONE, Schema("two", TWO.migrations[:1]))
    await db.close()
    db = await Database.open(path, ONE, TWO)  # a newer release adds a step
    columns = await db.call(lambda c: [r[1] for r in c.execute("PRAGMA table_info(b)")])
    assert columns == ["y", "z"]
    versions = await db.call(lambda c: dict(c.execute("SELECT * FROM schema_versions")))
    assert versions == {"one": 1, "two": 2}
    await db.close()
    with pytest.raises(DatabaseError, match="newer release"):
        await Database.open(path, Schema("two", TWO.migrations[:1]))


async def test_failed_write_rolls_back_and_closed_database_refuses(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "d.sqlite3", ONE)

    def half(c: sqlite3.Connection) -> None:
        with transaction(c, write=True):
            c.execute("INSERT INTO a VALUES (1)")
            raise ValueError("boom")

    with pytest.raises(ValueError):
        await db.call(half)
    assert await db.call(read) == []
    await db.close()
    with pytest.raises(DatabaseError, match="closed"):
        await db.call(read)


async def test_migrations_split_only_at_the_end_of_statements(tmp_path: Path) -> None:
    # Semicolons in a comment, a string and a trigger's body do not end a statement.
    schema = Schema(
        "three",
        [
            """
            CREATE TABLE c (
                v TEXT  -- a value; never changed
            );
            INSERT INTO c VALUES ('a; b');
            CREATE TRIGGER c_fixed BEFORE UPDATE ON c
                BEGIN SELECT RAISE(ABORT, 'c is fixed'); END;
            -- a closing remark; nothing follows
            """
        ],
    )
    async with await Database.open(tmp_path / "d.sqlite3", schema) as db:
        assert await db.call(lambda c: [r[0] for r in c.execute("SELECT v FROM c")]) == ["a; b"]
        with pytest.raises(sqlite3.IntegrityError, match="c is fixed"):
            await db.call(lambda c: c.execute("UPDATE c SET v = 'x'"))
