"""The catalog, persisted in SQLite.

All database work runs in one dedicated worker thread that owns the connection
(:mod:`gateway.sqlite`): the event loop never waits on disk, and a single thread serialises
every statement, so the store needs no locks of its own. Writes also take SQLite's write
lock up front (``BEGIN IMMEDIATE``), so a check and the write that depends on it are atomic
even against another process (the CLI) on the same file. The file is in WAL mode: readers
in other processes do not block the gateway's writes.

Timestamps and ``origin`` belong to the store: whatever a caller puts in them is replaced
on write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from gateway.catalog.codes import parse_device_code, parse_region_code
from gateway.catalog.models import (
    Camera,
    CameraClass,
    OnvifInfo,
    Origin,
    Region,
    RegionNode,
    Sector,
    StreamSource,
)
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.secretbox import SecretBox
from gateway.sqlite import Database, Schema, transaction

__all__ = ["SCHEMA_VERSION", "UPDATABLE_FIELDS", "CatalogStore"]

# _MIGRATIONS[n] takes the schema from version n to n + 1 (gateway/sqlite.py). Append new steps;
# never edit a released one, since databases in the field have already run it.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE regions (
        code   TEXT PRIMARY KEY,
        name   TEXT NOT NULL,
        parent TEXT REFERENCES regions (code)
    );
    CREATE INDEX regions_parent ON regions (parent);
    CREATE TABLE cameras (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        camera_class TEXT NOT NULL,
        region       TEXT NOT NULL REFERENCES regions (code),
        owner_unit   TEXT NOT NULL,
        sector       TEXT NOT NULL,
        lat          REAL,
        lon          REAL,
        main_url     TEXT NOT NULL,
        sub_url      TEXT,
        -- The credential pair, kept together so that encrypting it is one migration.
        username     TEXT,
        password     TEXT,
        recording    TEXT NOT NULL,
        tags         TEXT NOT NULL,
        origin       TEXT NOT NULL CHECK (origin IN ('config', 'api')),
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX cameras_region ON cameras (region);
    """,
    # ONVIF facts of cameras onboarded by address and password (OnvifInfo as JSON).
    "ALTER TABLE cameras ADD COLUMN onvif TEXT;",
    # The password sealed with the secret key (gateway/secretbox.py). The plaintext column
    # above is emptied into it when the store opens (_seal_plaintext), which SQL cannot do.
    "ALTER TABLE cameras ADD COLUMN secret TEXT;",
)
SCHEMA_VERSION = len(_MIGRATIONS)
SCHEMA = Schema("catalog", _MIGRATIONS)

_CAMERA_COLUMNS = (
    "id",
    "name",
    "camera_class",
    "region",
    "owner_unit",
    "sector",
    "lat",
    "lon",
    "main_url",
    "sub_url",
    "username",
    "secret",
    "recording",
    "tags",
    "onvif",
    "origin",
    "created_at",
    "updated_at",
)
# One statement for insert and update, so create, upsert and PATCH write rows alike.
_SAVE_CAMERA = (
    f"INSERT INTO cameras ({', '.join(_CAMERA_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _CAMERA_COLUMNS)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CAMERA_COLUMNS if c != "id")
)
_FIXED_FIELDS = frozenset({"id", "origin", "created_at", "updated_at"})
UPDATABLE_FIELDS = frozenset(f.name for f in fields(Camera)) - _FIXED_FIELDS


def _now() -> datetime:
    return datetime.now(UTC)


class _Connection(sqlite3.Connection):
    """A connection that carries the key for the secrets in its rows."""

    box: SecretBox


def _setup(db: _Connection, path: Path, box: SecretBox | None) -> None:
    db.box = box or SecretBox.load(path.parent)
    _seal_plaintext(db)


def _seal_plaintext(db: _Connection) -> None:
    """Encrypt passwords written by releases before sealing; checks the key on the way."""
    with transaction(db, write=True):
        rows = db.execute("SELECT id, password FROM cameras WHERE password IS NOT NULL")
        for camera_id, password in rows.fetchall():
            db.execute(
                "UPDATE cameras SET secret = ?, password = NULL WHERE id = ?",
                (db.box.seal(password, camera_id), camera_id),
            )
        # A wrong key must stop the start, not surface later as a camera that fails auth.
        sealed = db.execute("SELECT id, secret FROM cameras WHERE secret IS NOT NULL LIMIT 1")
        for camera_id, secret in sealed.fetchall():
            db.box.open(secret, camera_id)


def _camera_row(db: _Connection, camera: Camera) -> dict[str, Any]:
    source = camera.source
    secret = None if source.password is None else db.box.seal(source.password, camera.id)
    return {
        "id": camera.id,
        "name": camera.name,
        "camera_class": camera.camera_class.value,
        "region": camera.region,
        "owner_unit": camera.owner_unit,
        "sector": camera.sector.value,
        "lat": camera.lat,
        "lon": camera.lon,
        "main_url": source.main_url,
        "sub_url": source.sub_url,
        "username": source.username,
        "secret": secret,
        "recording": camera.recording.value,
        "tags": json.dumps(list(camera.tags), ensure_ascii=False),
        "onvif": json.dumps(asdict(camera.onvif)) if camera.onvif else None,
        "origin": camera.origin.value,
        "created_at": camera.created_at.isoformat(),
        "updated_at": camera.updated_at.isoformat(),
    }


def _camera_from_row(db: _Connection, row: sqlite3.Row) -> Camera:
    secret = row["secret"]
    source = StreamSource(
        main_url=row["main_url"],
        sub_url=row["sub_url"],
        username=row["username"],
        password=None if secret is None else db.box.open(secret, row["id"]),
    )
    return Camera(
        id=row["id"],
        name=row["name"],
        camera_class=row["camera_class"],
        region=row["region"],
        owner_unit=row["owner_unit"],
        sector=row["sector"],
        source=source,
        lat=row["lat"],
        lon=row["lon"],
        recording=row["recording"],
        tags=tuple(json.loads(row["tags"])),
        onvif=OnvifInfo(**json.loads(row["onvif"])) if row["onvif"] else None,
        origin=row["origin"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _fetch_camera(db: _Connection, camera_id: str) -> Camera | None:
    row = db.execute("SELECT * FROM cameras WHERE id = ?", (camera_id,)).fetchone()
    return None if row is None else _camera_from_row(db, row)


def _get_camera(db: _Connection, camera_id: str) -> Camera:
    camera = _fetch_camera(db, camera_id)
    if camera is None:
        raise NotFound(f"camera {camera_id} does not exist")
    return camera


def _fetch_region(db: _Connection, code: str) -> Region | None:
    row = db.execute("SELECT code, name FROM regions WHERE code = ?", (code,)).fetchone()
    return None if row is None else Region(code=row["code"], name=row["name"])


def _get_region(db: _Connection, code: str) -> Region:
    region = _fetch_region(db, code)
    if region is None:
        raise NotFound(f"region {code} does not exist")
    return region


def _require_region(db: _Connection, code: str, *, field: str) -> None:
    """A reference to a region that must already be in the catalog (422, not 404)."""
    if _fetch_region(db, code) is None:
        raise InvalidInput(
            f"region {code} is not in the catalog; create it first",
            field=field,
            code="unknown_region",
        )


def _save_region(db: _Connection, region: Region) -> None:
    if region.parent is not None:
        _require_region(db, region.parent, field="code")
    db.execute(
        "INSERT INTO regions (code, name, parent) VALUES (?, ?, ?) "
        "ON CONFLICT (code) DO UPDATE SET name = excluded.name",
        (region.code, region.name, region.parent),
    )


def _all_cameras(db: _Connection) -> list[Camera]:
    rows = db.execute("SELECT * FROM cameras ORDER BY id").fetchall()
    return [_camera_from_row(db, row) for row in rows]


class CatalogStore:
    """Cameras and regions in one SQLite file. Create with ``await CatalogStore.open(path)``."""

    def __init__(self, db: Database[_Connection]) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path, box: SecretBox | None = None) -> CatalogStore:
        """Open (and migrate) the catalog; passwords are sealed with ``box``, by default
        the key from the environment or the key file beside the database (secretbox.py)."""
        db = await Database.open(
            path, SCHEMA, factory=_Connection, setup=lambda db: _setup(db, path, box)
        )
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- regions -------------------------------------------------------------------------

    async def create_region(self, region: Region) -> Region:
        """Add a region; its parent (for a township or village) must exist already."""
        return await self._db.call(self._create_region, region)

    @staticmethod
    def _create_region(db: _Connection, region: Region) -> Region:
        with transaction(db, write=True):
            if _fetch_region(db, region.code) is not None:
                raise Conflict(f"region {region.code} already exists")
            _save_region(db, region)
        return region

    async def upsert_region(self, region: Region) -> Region:
        """Create the region or rename it: for regions declared in the config file."""
        return await self._db.call(self._upsert_region, region)

    @staticmethod
    def _upsert_region(db: _Connection, region: Region) -> Region:
        with transaction(db, write=True):
            _save_region(db, region)
        return region

    async def update_region(self, code: str, name: str) -> Region:
        parse_region_code(code, field="code")
        return await self._db.call(self._update_region, code, name)

    @staticmethod
    def _update_region(db: _Connection, code: str, name: str) -> Region:
        with transaction(db, write=True):
            region = replace(_get_region(db, code), name=name)
            db.execute("UPDATE regions SET name = ? WHERE code = ?", (region.name, code))
        return region

    async def delete_region(self, code: str) -> None:
        """Delete a region; refused (Conflict) while cameras or sub-regions reference it."""
        parse_region_code(code, field="code")
        await self._db.call(self._delete_region, code)

    @staticmethod
    def _delete_region(db: _Connection, code: str) -> None:
        with transaction(db, write=True):
            _get_region(db, code)
            cameras = db.execute("SELECT count(*) FROM cameras WHERE region = ?", (code,))
            children = db.execute("SELECT count(*) FROM regions WHERE parent = ?", (code,))
            n_cameras, n_children = cameras.fetchone()[0], children.fetchone()[0]
            if n_cameras or n_children:
                raise Conflict(
                    f"region {code} is still referenced by {n_cameras} camera(s) and "
                    f"{n_children} sub-region(s); move or delete them first"
                )
            try:
                db.execute("DELETE FROM regions WHERE code = ?", (code,))
            except sqlite3.IntegrityError:
                # Other stores in this file (alarm devices) reference regions too.
                raise Conflict(
                    f"region {code} is still referenced (e.g. by alarm devices); "
                    "move or delete them first"
                ) from None

    async def get_region(self, code: str) -> Region:
        parse_region_code(code, field="code")
        return await self._db.call(_get_region, code)

    async def list_regions(self) -> list[Region]:
        """All regions ordered by code, so each parent comes before its children."""
        return await self._db.call(self._list_regions)

    @staticmethod
    def _list_regions(db: _Connection) -> list[Region]:
        rows = db.execute("SELECT code, name FROM regions ORDER BY code")
        return [Region(code=row["code"], name=row["name"]) for row in rows]

    async def region_tree(self) -> list[RegionNode]:
        """The counties, each with its townships, each with its villages."""
        roots: list[RegionNode] = []
        nodes: dict[str, RegionNode] = {}
        for region in await self.list_regions():
            node = nodes[region.code] = RegionNode(region)
            # Parents exist (enforced on create) and sort first (their code is a prefix).
            siblings = roots if region.parent is None else nodes[region.parent].children
            siblings.append(node)
        return roots

    # --- cameras -------------------------------------------------------------------------

    async def create_camera(self, camera: Camera) -> Camera:
        """Add a camera through the API (origin ``api``); Conflict if the id is taken."""
        return await self._db.call(self._create_camera, camera)

    @staticmethod
    def _create_camera(db: _Connection, camera: Camera) -> Camera:
        now = _now()
        camera = replace(camera, origin=Origin.API, created_at=now, updated_at=now)
        with transaction(db, write=True):
            if _fetch_camera(db, camera.id) is not None:
                raise Conflict(f"camera {camera.id} already exists")
            _require_region(db, camera.region, field="region")
            db.execute(_SAVE_CAMERA, _camera_row(db, camera))
        return camera

    async def upsert_camera(self, camera: Camera) -> Camera:
        """Declare a camera from the config file (origin ``config``).

        The config is the authority for the cameras it declares: an existing camera with
        the same id is overwritten and becomes config-owned. Re-applying an unchanged
        declaration (every start) writes nothing and keeps ``updated_at``.
        """
        return await self._db.call(self._upsert_camera, camera)

    @staticmethod
    def _upsert_camera(db: _Connection, camera: Camera) -> Camera:
        now = _now()
        with transaction(db, write=True):
            _require_region(db, camera.region, field="region")
            existing = _fetch_camera(db, camera.id)
            if existing is None:
                camera = replace(camera, origin=Origin.CONFIG, created_at=now, updated_at=now)
            else:
                camera = replace(
                    camera,
                    origin=Origin.CONFIG,
                    created_at=existing.created_at,
                    updated_at=existing.updated_at,
                )
                if camera == existing:
                    return existing
                camera = replace(camera, updated_at=now)
            db.execute(_SAVE_CAMERA, _camera_row(db, camera))
        return camera

    async def prune_config_cameras(self, keep: Collection[str]) -> list[str]:
        """Delete config-declared cameras whose ids are not in ``keep``; return their ids.

        Run after upserting the config's cameras, so a camera removed from the file leaves
        the catalog; cameras created through the API are never touched.
        """
        return await self._db.call(self._prune_config_cameras, keep)

    @staticmethod
    def _prune_config_cameras(db: _Connection, keep: Collection[str]) -> list[str]:
        with transaction(db, write=True):
            rows = db.execute(
                "DELETE FROM cameras WHERE origin = 'config' "
                "AND id NOT IN (SELECT value FROM json_each(?)) RETURNING id",
                (json.dumps(list(keep)),),
            ).fetchall()
        return sorted(row["id"] for row in rows)

    async def get_camera(self, camera_id: str) -> Camera:
        parse_device_code(camera_id, field="id")
        return await self._db.call(_get_camera, camera_id)

    async def all_cameras(self) -> list[Camera]:
        """Every camera, ordered by id (start-up, metrics, region counts)."""
        return await self._db.call(_all_cameras)

    async def list_cameras(
        self,
        *,
        camera_class: CameraClass | None = None,
        region: str | None = None,
        sector: Sector | None = None,
        ids: Collection[str] | None = None,
        within_regions: Collection[str] | None = None,
        within_classes: Collection[CameraClass] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Camera], int]:
        """One page of cameras ordered by id, and the total number that match.

        ``region`` selects its whole subtree: a county returns the cameras of its
        townships and villages too. ``ids`` restricts to those cameras (the API's status
        filter passes the ids the hub reports in that state). ``within_regions`` (any of
        these subtrees) and ``within_classes`` are a principal's scope (gateway/auth):
        None is no restriction, an empty collection matches nothing.
        """
        if limit < 0:
            raise InvalidInput("limit must not be negative", field="limit")
        if offset < 0:
            raise InvalidInput("offset must not be negative", field="offset")
        clauses: list[str] = []
        params: list[object] = []
        if camera_class is not None:
            clauses.append("camera_class = ?")
            params.append(str(camera_class))
        if region is not None:
            parse_region_code(region, field="region")
            # A subtree is every code starting with the region's (see codes.is_within);
            # GLOB, unlike LIKE, is case-sensitive and so can use the index on region.
            clauses.append("region GLOB ?")
            params.append(region + "*")
        if sector is not None:
            clauses.append("sector = ?")
            params.append(str(sector))
        if ids is not None:
            # json_each has no bound-parameter limit, unlike "IN (?, ?, ...)".
            clauses.append("id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(ids)))
        if within_regions is not None:
            subtrees = [parse_region_code(code, field="region").code for code in within_regions]
            clauses.append("(" + " OR ".join(["region GLOB ?"] * len(subtrees) or ["0"]) + ")")
            params.extend(code + "*" for code in subtrees)
        if within_classes is not None:
            clauses.append("camera_class IN (SELECT value FROM json_each(?))")
            params.append(json.dumps([str(c) for c in within_classes]))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return await self._db.call(self._list_cameras, where, params, limit, offset)

    @staticmethod
    def _list_cameras(
        db: _Connection, where: str, params: list[object], limit: int, offset: int
    ) -> tuple[list[Camera], int]:
        # One read transaction: the page and the total come from the same snapshot.
        with transaction(db, write=False):
            total: int = db.execute(f"SELECT count(*) FROM cameras{where}", params).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM cameras{where} ORDER BY id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return [_camera_from_row(db, row) for row in rows], total

    async def update_camera(self, camera_id: str, **changes: Any) -> Camera:
        """Change some fields of a camera (a PATCH); the result is validated as a whole.

        ``changes`` are :class:`Camera` fields other than id, origin and the timestamps.
        """
        parse_device_code(camera_id, field="id")
        unknown = sorted(set(changes) - UPDATABLE_FIELDS)
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(unknown)}", field=unknown[0])
        return await self._db.call(self._update_camera, camera_id, changes)

    @staticmethod
    def _update_camera(db: _Connection, camera_id: str, changes: dict[str, Any]) -> Camera:
        with transaction(db, write=True):
            current = _get_camera(db, camera_id)
            camera = replace(current, **changes, updated_at=_now())
            if camera.region != current.region:
                _require_region(db, camera.region, field="region")
            db.execute(_SAVE_CAMERA, _camera_row(db, camera))
        return camera

    async def delete_camera(self, camera_id: str) -> None:
        parse_device_code(camera_id, field="id")
        await self._db.call(self._delete_camera, camera_id)

    @staticmethod
    def _delete_camera(db: _Connection, camera_id: str) -> None:
        with transaction(db, write=True):
            deleted = db.execute("DELETE FROM cameras WHERE id = ?", (camera_id,)).rowcount
        if not deleted:
            raise NotFound(f"camera {camera_id} does not exist")
