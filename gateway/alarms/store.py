"""Alarm boxes in the catalog database (``catalog.sqlite3``, table ``alarm_devices``).

The table sits beside the cameras and regions, so a device's region is a real foreign key
into the region tree and its linked cameras are checked against the camera table in the
same transaction. It has its own schema, versioned apart from the catalog's in the file's
``schema_versions`` table (:mod:`gateway.sqlite`).

Its own connection and worker thread (as the catalog and the event log have theirs): the
event loop never waits on SQLite, and a heartbeat storm does not queue behind catalog work.
Shared secrets are sealed with the catalog's key (:mod:`gateway.secretbox`), with the device
id as associated data; query tokens are stored only as hashes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from adapters.alarms.device import AlarmDevice
from adapters.alarms.errors import UnknownAlarmDevice
from gateway.catalog.codes import parse_region_code
from gateway.errors import Conflict, InvalidInput
from gateway.secretbox import SecretBox
from gateway.sqlite import Database, Schema, transaction

_P = ParamSpec("_P")
_T = TypeVar("_T")

# _MIGRATIONS[n] takes the schema from version n to n + 1; each runs in one transaction.
# Append new steps; never edit a released one.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE alarm_devices (
        id                 TEXT PRIMARY KEY,
        serial             TEXT,
        name               TEXT NOT NULL,
        school             TEXT NOT NULL,
        sector             TEXT NOT NULL,
        region             TEXT NOT NULL REFERENCES regions (code),
        location           TEXT NOT NULL,
        cameras            TEXT NOT NULL,
        phones             TEXT NOT NULL,
        secret             TEXT NOT NULL,
        token_hash         TEXT,
        heartbeat_interval REAL,
        online             INTEGER,
        last_seen          REAL,
        created_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL
    );
    CREATE UNIQUE INDEX alarm_devices_serial ON alarm_devices (serial);
    CREATE INDEX alarm_devices_region ON alarm_devices (region);
    CREATE INDEX alarm_devices_online ON alarm_devices (online) WHERE online = 1;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
SCHEMA = Schema("alarms", _MIGRATIONS)

_COLUMNS = (
    "id",
    "serial",
    "name",
    "school",
    "sector",
    "region",
    "location",
    "cameras",
    "phones",
    "secret",
    "token_hash",
    "heartbeat_interval",
    "online",
    "last_seen",
    "created_at",
    "updated_at",
)
_SAVE = (
    f"INSERT INTO alarm_devices ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "id")
)
# What a PATCH may change: not the id, the liveness the gateway observes, or the timestamps.
UPDATABLE_FIELDS = frozenset(f.name for f in fields(AlarmDevice)) - {
    "id",
    "online",
    "last_seen",
    "created_at",
    "updated_at",
}


class _Connection(sqlite3.Connection):
    box: SecretBox


def _context(device_id: str) -> str:
    # Not the bare id: a sealed secret must not open as another table's row of that id.
    return f"alarm_devices:{device_id}"


def _row(db: _Connection, device: AlarmDevice) -> dict[str, Any]:
    return {
        "id": device.id,
        "serial": device.serial,
        "name": device.name,
        "school": device.school,
        "sector": device.sector.value,
        "region": device.region,
        "location": device.location,
        "cameras": json.dumps(list(device.cameras)),
        "phones": json.dumps(list(device.phones)),
        "secret": db.box.seal(device.secret, _context(device.id)),
        "token_hash": device.token_hash,
        "heartbeat_interval": device.heartbeat_interval,
        "online": None if device.online is None else int(device.online),
        "last_seen": device.last_seen,
        "created_at": device.created_at.isoformat(),
        "updated_at": device.updated_at.isoformat(),
    }


def _device(db: _Connection, row: sqlite3.Row) -> AlarmDevice:
    return AlarmDevice(
        id=row["id"],
        serial=row["serial"],
        name=row["name"],
        school=row["school"],
        sector=row["sector"],
        region=row["region"],
        location=row["location"],
        cameras=tuple(json.loads(row["cameras"])),
        phones=tuple(json.loads(row["phones"])),
        secret=db.box.open(row["secret"], _context(row["id"])),
        token_hash=row["token_hash"],
        heartbeat_interval=row["heartbeat_interval"],
        online=None if row["online"] is None else bool(row["online"]),
        last_seen=row["last_seen"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _fetch(db: _Connection, ref: str) -> AlarmDevice | None:
    row = db.execute(
        "SELECT * FROM alarm_devices WHERE id = ? OR serial = ? LIMIT 1", (ref, ref)
    ).fetchone()
    return None if row is None else _device(db, row)


def _get(db: _Connection, ref: str) -> AlarmDevice:
    device = _fetch(db, ref)
    if device is None:
        raise UnknownAlarmDevice(f"alarm device {ref} is not in the catalog")
    return device


def _check_references(
    db: _Connection, device: AlarmDevice, before: AlarmDevice | None = None
) -> None:
    """The region and newly linked cameras must exist; the serial must be free (422/409).

    Cameras linked earlier are not checked again: one deleted from the catalog since is
    skipped by the linkage, and must not block an unrelated edit of the device.
    """
    if db.execute("SELECT 1 FROM regions WHERE code = ?", (device.region,)).fetchone() is None:
        raise InvalidInput(
            f"region {device.region} is not in the catalog; create it first",
            field="region",
            code="unknown_region",
        )
    known = {
        row[0]
        for row in db.execute(
            "SELECT id FROM cameras WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(device.cameras)),),
        )
    }
    earlier = set(before.cameras) if before is not None else set()
    missing = [c for c in device.cameras if c not in known and c not in earlier]
    if missing:
        raise InvalidInput(
            f"linked camera {missing[0]} is not in the catalog",
            field="cameras",
            code="unknown_camera",
        )
    if device.serial is not None:
        owner = db.execute(
            "SELECT id FROM alarm_devices WHERE serial = ? AND id != ?", (device.serial, device.id)
        ).fetchone()
        if owner is not None:
            raise Conflict(f"serial {device.serial} already belongs to alarm device {owner[0]}")


def _create(db: _Connection, device: AlarmDevice) -> AlarmDevice:
    now = datetime.now(UTC)
    device = replace(device, online=None, last_seen=None, created_at=now, updated_at=now)
    with transaction(db, write=True):
        if db.execute("SELECT 1 FROM alarm_devices WHERE id = ?", (device.id,)).fetchone():
            raise Conflict(f"alarm device {device.id} already exists")
        _check_references(db, device)
        db.execute(_SAVE, _row(db, device))
    return device


def _update(db: _Connection, device_id: str, changes: dict[str, Any]) -> AlarmDevice:
    with transaction(db, write=True):
        current = _get(db, device_id)
        device = replace(current, **changes, updated_at=datetime.now(UTC))
        _check_references(db, device, current)
        db.execute(_SAVE, _row(db, device))
    return device


def _delete(db: _Connection, device_id: str) -> AlarmDevice:
    with transaction(db, write=True):
        device = _get(db, device_id)
        db.execute("DELETE FROM alarm_devices WHERE id = ?", (device.id,))
    return device


def _list(
    db: _Connection,
    region: str | None,
    within: tuple[str, ...] | None,
    limit: int,
    offset: int,
) -> tuple[list[AlarmDevice], int]:
    # A region selects its subtree: the codes that start with it (GLOB can use the index).
    clauses, args = [], []
    if region is not None:
        clauses.append("region GLOB ?")
        args.append(region + "*")
    if within is not None:
        clauses.append("(" + (" OR ".join(["region GLOB ?"] * len(within)) or "0") + ")")
        args.extend(code + "*" for code in within)
    where = "WHERE " + " AND ".join(clauses) if clauses else ""
    with transaction(db, write=False):
        total: int = db.execute(f"SELECT count(*) FROM alarm_devices {where}", args).fetchone()[0]
        rows = db.execute(
            f"SELECT * FROM alarm_devices {where} ORDER BY id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
    return [_device(db, row) for row in rows], total


def _touch(db: _Connection, device_id: str, now: float) -> bool | None:
    """Record a sign of life; return whether the device counted as online before."""
    with transaction(db, write=True):
        row = db.execute("SELECT online FROM alarm_devices WHERE id = ?", (device_id,)).fetchone()
        if row is None:
            raise UnknownAlarmDevice(f"alarm device {device_id} is not in the catalog")
        db.execute(
            "UPDATE alarm_devices SET online = 1, last_seen = max(coalesce(last_seen, 0), ?)"
            " WHERE id = ?",
            (now, device_id),
        )
    return None if row["online"] is None else bool(row["online"])


def _mark_offline(
    db: _Connection, now: float, default_interval: float, missed: int, since: float
) -> list[AlarmDevice]:
    """Online devices silent for ``missed`` heartbeat intervals become offline; returned.

    Silence counts from ``since`` at the earliest (the gateway's start): while the gateway
    was down, boxes could not reach it, which says nothing about them.
    """
    with transaction(db, write=True):
        rows = db.execute(
            "UPDATE alarm_devices SET online = 0 WHERE online = 1 AND"
            " max(last_seen, ?) + coalesce(heartbeat_interval, ?) * ? < ? RETURNING *",
            (since, default_interval, missed, now),
        ).fetchall()
    return [_device(db, row) for row in rows]


class AlarmStore:
    """``AlarmStore(catalog_path)``; ``await start()`` once the catalog has migrated (the
    region and camera tables exist), ``await close()`` last."""

    def __init__(self, path: Path, box: SecretBox | None = None) -> None:
        self.path = path
        self._box = box
        self._db: Database[_Connection] | None = None

    async def start(self) -> None:
        def setup(db: _Connection) -> None:
            db.box = self._box or SecretBox.load(self.path.parent)

        self._db = await Database.open(self.path, SCHEMA, factory=_Connection, setup=setup)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()  # after any calls still pending

    async def _call(
        self,
        work: Callable[Concatenate[_Connection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        if self._db is None:
            raise RuntimeError("the alarm store is not open")
        return await self._db.call(work, *args, **kwargs)

    async def create(self, device: AlarmDevice) -> AlarmDevice:
        return await self._call(_create, device)

    async def get(self, ref: str) -> AlarmDevice:
        """By GB/T 28181 code or vendor serial; :class:`UnknownAlarmDevice` if neither."""
        return await self._call(_get, ref)

    async def update(self, device_id: str, changes: dict[str, Any]) -> AlarmDevice:
        unknown = sorted(set(changes) - UPDATABLE_FIELDS)
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(unknown)}", field=unknown[0])
        return await self._call(_update, device_id, changes)

    async def delete(self, device_id: str) -> AlarmDevice:
        return await self._call(_delete, device_id)

    async def list_devices(
        self,
        *,
        region: str | None = None,
        within: tuple[str, ...] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AlarmDevice], int]:
        """One page ordered by id. ``region``: its subtree; ``within``: the caller's scope
        (region subtrees; None: everywhere, empty: nowhere)."""
        if region is not None:
            parse_region_code(region, field="region")
        return await self._call(_list, region, within, limit, offset)

    async def touch(self, device_id: str, now: float) -> bool | None:
        return await self._call(_touch, device_id, now)

    async def mark_offline(
        self, now: float, *, default_interval: float, missed: int, since: float
    ) -> list[AlarmDevice]:
        return await self._call(_mark_offline, now, default_interval, missed, since)
