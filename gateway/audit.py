"""The audit log: who watched, played back, exported, steered or changed what, and from where.

Public-video rules (Decree 799; GB 35114 §6.12) want every view, playback and export on
record, and the record tamper-evident. Rows are appended to ``security.sqlite3`` with a hash
chain: each row's ``hash`` is SHA-256 over the previous row's hash and this row's content,
so editing or deleting a row breaks every hash after it (``sharpeyes audit verify`` names
the first broken row). Deleting rows from the end is caught by SQLite's own record of the
highest sequence number handed out. Triggers refuse UPDATE and DELETE for ordinary use.

Other modules record through one call, with the principal of the request::

    await gateway.audit.record(principal, Action.EXPORT, camera=camera_id,
                               detail={"start": iso(start), "end": iso(end)})

The address comes from the principal; the camera's region is looked up here (the audit
query shows each police or admin user only the rows of cameras in their scope).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from gateway.auth.db import SecurityDb
from gateway.auth.principals import Principal
from gateway.errors import GatewayError
from gateway.sqlite import transaction

log = logging.getLogger(__name__)

GENESIS = "0" * 64


class Action(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    TOKEN_REJECTED = "token_rejected"
    ACCESS_DENIED = "access_denied"
    LIVE_START = "live_start"
    LIVE_STOP = "live_stop"
    SNAPSHOT = "snapshot"
    PLAYBACK = "playback"
    EXPORT = "export"
    HOLD_CREATE = "hold_create"
    HOLD_RELEASE = "hold_release"
    PTZ = "ptz"
    CAMERA_CREATE = "camera_create"
    CAMERA_UPDATE = "camera_update"
    CAMERA_DELETE = "camera_delete"
    REGION_CREATE = "region_create"
    REGION_UPDATE = "region_update"
    REGION_DELETE = "region_delete"
    ONVIF_ONBOARD = "onvif_onboard"
    USER_CREATE = "user_create"
    USER_UPDATE = "user_update"
    USER_DELETE = "user_delete"
    TOKEN_CREATE = "token_create"
    TOKEN_REVOKE = "token_revoke"
    AUDIT_READ = "audit_read"
    # School one-button alarms (gateway/api/alarms.py).
    ALARM_DEVICE_CREATE = "alarm_device_create"
    ALARM_DEVICE_UPDATE = "alarm_device_update"
    ALARM_DEVICE_DELETE = "alarm_device_delete"
    ALARM_TEST = "alarm_test"
    ALARM_ACK = "alarm_ack"
    ALARM_CLOSE = "alarm_close"


class BrokenChain(GatewayError):
    code = "audit_chain_broken"

    def __init__(self, seq: int, message: str) -> None:
        super().__init__(f"audit row {seq}: {message}")
        self.seq = seq


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: str
    actor: str
    role: str
    via: str
    address: str
    action: str
    outcome: str
    camera: str | None
    region: str | None
    detail: dict[str, Any]
    hash: str


_CONTENT = (
    "at",
    "actor",
    "role",
    "via",
    "address",
    "action",
    "outcome",
    "camera",
    "region",
    "detail",
)
CSV_COLUMNS = ("seq", *_CONTENT, "hash")


def chain_hash(prev: str, content: Mapping[str, object]) -> str:
    # Canonical JSON of the content fields in a fixed order: the same row hashes the same
    # in any process and release.
    text = json.dumps([content[k] for k in _CONTENT], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + text).encode()).hexdigest()


def append(db: sqlite3.Connection, content: dict[str, object]) -> int:
    """Append one row (blocking). The chain head is read inside the write transaction, so
    the gateway and the CLI can append to the same file without forking the chain."""
    with transaction(db, write=True):
        head = db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = head[0] if head else GENESIS
        cursor = db.execute(
            f"INSERT INTO audit ({', '.join(_CONTENT)}, prev, hash) "
            f"VALUES ({', '.join('?' * len(_CONTENT))}, ?, ?)",
            (*(content[k] for k in _CONTENT), prev, chain_hash(prev, content)),
        )
    return cursor.lastrowid or 0


def verify(db: sqlite3.Connection) -> tuple[int, str]:
    """(rows, head hash) if the chain is whole; :class:`BrokenChain` at the first bad row."""
    prev, expected_seq, rows = GENESIS, 1, 0
    for row in db.execute("SELECT * FROM audit ORDER BY seq"):
        seq = row["seq"]
        if seq != expected_seq:
            raise BrokenChain(expected_seq, f"missing (the next row present is {seq})")
        if row["prev"] != prev:
            raise BrokenChain(seq, "does not follow the row before it (prev hash differs)")
        if chain_hash(prev, row) != row["hash"]:
            raise BrokenChain(seq, "its content was changed after it was written")
        prev, expected_seq, rows = row["hash"], seq + 1, rows + 1
    issued = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
    if issued is not None and issued[0] >= expected_seq:
        raise BrokenChain(expected_seq, f"missing: rows up to {issued[0]} were written")
    return rows, prev


def content_of(
    principal: Principal,
    action: Action,
    *,
    outcome: str,
    camera: str | None,
    region: str | None,
    detail: Mapping[str, object] | None,
) -> dict[str, object]:
    return {
        "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": principal.name,
        "role": principal.role.value,
        "via": principal.via,
        "address": principal.address,
        "action": action.value,
        "outcome": outcome,
        "camera": camera,
        "region": region,
        "detail": json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True),
    }


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        seq=row["seq"],
        at=row["at"],
        actor=row["actor"],
        role=row["role"],
        via=row["via"],
        address=row["address"],
        action=row["action"],
        outcome=row["outcome"],
        camera=row["camera"],
        region=row["region"],
        detail=json.loads(row["detail"]),
        hash=row["hash"],
    )


@dataclass(frozen=True, slots=True)
class AuditQuery:
    since: str | None = None  # ISO 8601 UTC, inclusive
    until: str | None = None  # exclusive
    actor: str | None = None
    action: str | None = None
    camera: str | None = None
    regions: tuple[str, ...] | None = None  # the reader's scope; None: every row
    limit: int = 100
    offset: int = 0


class AuditLog:
    def __init__(self, db: SecurityDb, region_of: Callable[[str], Awaitable[str | None]]) -> None:
        self._db = db
        self._region_of = region_of

    async def record(
        self,
        principal: Principal,
        action: Action,
        *,
        camera: str | None = None,
        region: str | None = None,
        detail: Mapping[str, object] | None = None,
        outcome: str = "ok",
    ) -> None:
        """Append one entry. ``detail``: a small JSON-able mapping (range, duration, ...).
        ``region``: for objects that are not cameras (alarm devices); a camera's is looked up."""
        if camera is not None:
            region = await self._region_of(camera)
        content = content_of(
            principal, action, outcome=outcome, camera=camera, region=region, detail=detail
        )
        await self._db.call(append, content)

    async def verify(self) -> tuple[int, str]:
        return await self._db.call(verify)

    async def query(self, q: AuditQuery) -> tuple[list[Entry], int]:
        return await self._db.call(self._query, q)

    @staticmethod
    def _query(db: sqlite3.Connection, q: AuditQuery) -> tuple[list[Entry], int]:
        clauses: list[str] = []
        params: list[object] = []
        for column, op, value in (
            ("at", ">=", q.since),
            ("at", "<", q.until),
            ("actor", "=", q.actor),
            ("action", "=", q.action),
            ("camera", "=", q.camera),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if q.regions is not None:
            # A scoped reader sees the rows of cameras in its subtrees, nothing else.
            subtree = " OR ".join(["region GLOB ?"] * len(q.regions)) or "0"
            clauses.append(f"({subtree})")
            params.extend(r + "*" for r in q.regions)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with transaction(db, write=False):
            total: int = db.execute(f"SELECT count(*) FROM audit{where}", params).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM audit{where} ORDER BY seq LIMIT ? OFFSET ?",
                [*params, q.limit, q.offset],
            ).fetchall()
        return [_entry(r) for r in rows], total


def to_csv(entries: list[Entry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True)
        row = [getattr(e, c) if c != "detail" else detail for c in CSV_COLUMNS]
        # Spreadsheet formula injection: a cell starting with = + - @ is data, not a formula.
        writer.writerow(
            ["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row]
        )
    return out.getvalue()
