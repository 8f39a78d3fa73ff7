"""Who is asking: users, their roles and scopes, API tokens and password hashes.

A *user* has a role and a scope; it signs in on the web page with a password (a session,
gateway/auth/sessions.py) or is represented by API tokens (integrations, scripts). A token
acts as its user: revoke the token, or disable the user and all its tokens stop.

* Tokens are 256 random bits, shown once; only their SHA-256 is stored (a preimage of a
  random 256-bit value is out of reach, so no slow KDF is needed for them).
* Passwords are stored as Argon2id (RFC 9106's second recommended set, as OWASP lists it:
  19 MiB, 2 passes), computed in a thread: they cost tens of milliseconds on purpose.
* A scope is region subtrees and/or camera classes; an empty one sees nothing, ``None``
  in either part means no restriction there.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from gateway.auth.db import SecurityDb
from gateway.catalog.codes import is_within, parse_region_code
from gateway.catalog.models import CameraClass
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.redact import redact
from gateway.sqlite import transaction

log = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "SHARPEYES_ADMIN_TOKEN"
TOKEN_PREFIX = "se_"
MIN_PASSWORD = 10
MIN_BOOTSTRAP_TOKEN = 32
_USERNAME = re.compile(r"^[\w.@-]{1,64}$")
# Argon2id memory (KiB) and passes. Changing them keeps old hashes valid (the PHC string
# records its own parameters).
_KDF_MEMORY = 19 * 1024
_KDF_PASSES = 2
# Two KDFs at once at most: each takes 19 MiB, and a login flood must not take the host.
# A thread semaphore: it is taken inside the worker thread, whatever event loop asked.
_kdf_slots = threading.BoundedSemaphore(2)


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"  # live and playback in scope, PTZ
    POLICE = "police"  # everything in scope read-only, playback, export, holds, audit
    INTEGRATOR = "integrator"  # onboards cameras and devices in scope; no video
    VIEWER = "viewer"  # live only


class Placed(Protocol):
    """Where a camera sits: a :class:`Camera`, or a request body describing one."""

    @property
    def region(self) -> str: ...
    @property
    def camera_class(self) -> CameraClass: ...


@dataclass(frozen=True, slots=True)
class Scope:
    """Region subtrees and camera classes a principal may see; None: no restriction."""

    regions: tuple[str, ...] | None = None
    classes: frozenset[CameraClass] | None = None

    def __post_init__(self) -> None:
        if self.regions is not None:
            codes = tuple(parse_region_code(r, field="regions").code for r in self.regions)
            object.__setattr__(self, "regions", tuple(dict.fromkeys(codes)))
        if self.classes is not None:
            object.__setattr__(self, "classes", frozenset(CameraClass(c) for c in self.classes))

    @property
    def unrestricted(self) -> bool:
        return self.regions is None and self.classes is None

    def allows_region(self, code: str) -> bool:
        return self.regions is None or any(is_within(code, r) for r in self.regions)

    def allows(self, camera: Placed) -> bool:
        return self.allows_region(camera.region) and (
            self.classes is None or camera.camera_class in self.classes
        )

    def covers(self, other: Scope) -> bool:
        """True if everything ``other`` allows, this scope allows too (no escalation)."""
        if self.regions is not None and (
            other.regions is None or not all(self.allows_region(r) for r in other.regions)
        ):
            return False
        return self.classes is None or (other.classes is not None and other.classes <= self.classes)

    def to_json(self) -> tuple[str | None, str | None]:
        regions = None if self.regions is None else json.dumps(list(self.regions))
        classes = None if self.classes is None else json.dumps(sorted(self.classes))
        return regions, classes

    @classmethod
    def from_json(cls, regions: str | None, classes: str | None) -> Scope:
        return cls(
            regions=None if regions is None else tuple(json.loads(regions)),
            classes=None if classes is None else frozenset(json.loads(classes)),
        )


EVERYTHING = Scope()


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request (or the CLI, or the gateway itself)."""

    user_id: int | None
    name: str
    role: Role
    scope: Scope
    via: str  # "token:<id>", "session", "cli", "anonymous", "system"
    address: str  # the client's address, for the audit log

    @property
    def key(self) -> str:
        """One key per user, for limits shared by its sessions and tokens."""
        return f"user:{self.user_id}" if self.user_id is not None else f"{self.via}:{self.name}"


def anonymous(address: str, via: str = "anonymous") -> Principal:
    """A caller without valid credentials: an empty scope, never any permission."""
    return Principal(None, "-", Role.VIEWER, Scope(regions=()), via, address)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    scope: Scope
    has_password: bool
    disabled: bool
    created_at: float
    created_by: str

    def principal(self, via: str, address: str) -> Principal:
        return Principal(self.id, self.username, self.role, self.scope, via, address)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    user_id: int
    username: str
    name: str
    hint: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None


# --- hashing -------------------------------------------------------------------------------


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    """Argon2id PHC string (blocking, ~30 ms)."""
    kdf = Argon2id(
        salt=secrets.token_bytes(16),
        length=32,
        iterations=_KDF_PASSES,
        lanes=1,
        memory_cost=_KDF_MEMORY,
    )
    return kdf.derive_phc_encoded(password.encode())


def verify_password(password: str, encoded: str | None) -> bool:
    """Blocking. With no stored hash a dummy one is checked, so timing tells nothing."""
    try:
        Argon2id.verify_phc_encoded(password.encode(), encoded or _DUMMY)
    except (InvalidKey, ValueError):
        return False
    return encoded is not None


def _hash_limited(password: str) -> str:
    with _kdf_slots:
        return hash_password(password)


def _verify_limited(password: str, encoded: str | None) -> bool:
    with _kdf_slots:
        return verify_password(password, encoded)


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(_hash_limited, password)


async def verify_password_async(password: str, encoded: str | None) -> bool:
    return await asyncio.to_thread(_verify_limited, password, encoded)


_DUMMY = hash_password(secrets.token_urlsafe(16))


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters", field="password")


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise InvalidInput(
            "a username is 1-64 letters, digits, '.', '_', '@' or '-'", field="username"
        )
    return username


# --- the directory -------------------------------------------------------------------------


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=Role(row["role"]),
        scope=Scope.from_json(row["regions"], row["classes"]),
        has_password=row["password"] is not None,
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def _token(row: sqlite3.Row) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        user_id=row["user_id"],
        username=row["username"],
        name=row["name"],
        hint=row["hint"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


_TOKEN_SELECT = "SELECT t.*, u.username FROM tokens t JOIN users u ON u.id = t.user_id"


def _insert_user(
    db: sqlite3.Connection,
    username: str,
    role: Role,
    scope: Scope,
    password_hash: str | None,
    created_by: str,
) -> User:
    regions, classes = scope.to_json()
    try:
        cursor = db.execute(
            "INSERT INTO users (username, role, regions, classes, password, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (username, role.value, regions, classes, password_hash, time.time(), created_by),
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"user {username} already exists") from None
    row = db.execute("SELECT * FROM users WHERE id = ?", (cursor.lastrowid,)).fetchone()
    return _user(row)


def _insert_token(
    db: sqlite3.Connection, user_id: int, name: str, token: str, expires_at: float | None
) -> TokenInfo:
    cursor = db.execute(
        "INSERT INTO tokens (user_id, name, digest, hint, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (user_id, name, digest(token), token[:7], time.time(), expires_at),
    )
    row = db.execute(_TOKEN_SELECT + " WHERE t.id = ?", (cursor.lastrowid,)).fetchone()
    return _token(row)


class Directory:
    """Users and tokens in ``security.sqlite3``."""

    def __init__(self, db: SecurityDb) -> None:
        self._db = db
        self._last_used: dict[int, float] = {}

    # --- start-up ------------------------------------------------------------------------

    async def bootstrap(self, environ: dict[str, str]) -> str | None:
        """Make sure the first admin exists; return a one-time token to show, if one was made.

        ``SHARPEYES_ADMIN_TOKEN`` names the first admin's token; without it, a first start
        makes one and returns it (the caller prints it, once). Once users exist, the
        variable only keeps working as the token it registered (revocable like any other).
        """
        given = environ.get(ADMIN_TOKEN_ENV)
        if given is not None:
            if len(given) < MIN_BOOTSTRAP_TOKEN:
                raise InvalidInput(
                    f"{ADMIN_TOKEN_ENV} must be at least {MIN_BOOTSTRAP_TOKEN} characters "
                    "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
            redact.add(given)
        made = await self._db.call(self._bootstrap, given)
        return made

    @staticmethod
    def _bootstrap(db: sqlite3.Connection, given: str | None) -> str | None:
        with transaction(db, write=True):
            if db.execute("SELECT count(*) FROM users").fetchone()[0]:
                if (
                    given is not None
                    and not db.execute(
                        "SELECT 1 FROM tokens WHERE digest = ?", (digest(given),)
                    ).fetchone()
                ):
                    log.warning(
                        "%s is ignored: users exist already and it is not one of their tokens",
                        ADMIN_TOKEN_ENV,
                    )
                return None
            admin = _insert_user(db, "admin", Role.ADMIN, EVERYTHING, None, "bootstrap")
            token = given or new_token()
            name = f"bootstrap ({ADMIN_TOKEN_ENV})" if given else "bootstrap (first start)"
            _insert_token(db, admin.id, name, token, None)
        return None if given else token

    # --- authentication ------------------------------------------------------------------

    async def user_for_token(self, token: str) -> tuple[User, TokenInfo] | None:
        """The active user behind ``token``, or None (unknown, expired, revoked, disabled)."""
        if not token.isascii() or len(token) > 256:
            return None
        found = await self._db.call(self._user_for_token, digest(token), time.time())
        if found is not None:
            info = found[1]
            # last_used_at is for the admin's listing: once a minute is precise enough.
            if time.time() - self._last_used.get(info.id, 0) > 60:
                self._last_used[info.id] = time.time()
                await self._db.call(self._touch, info.id)
        return found

    @staticmethod
    def _user_for_token(
        db: sqlite3.Connection, token_digest: str, now: float
    ) -> tuple[User, TokenInfo] | None:
        row = db.execute(_TOKEN_SELECT + " WHERE t.digest = ?", (token_digest,)).fetchone()
        if row is None or not hmac.compare_digest(row["digest"], token_digest):
            return None
        info = _token(row)
        if info.revoked_at is not None or (info.expires_at is not None and info.expires_at <= now):
            return None
        user = _user(db.execute("SELECT * FROM users WHERE id = ?", (info.user_id,)).fetchone())
        return None if user.disabled else (user, info)

    @staticmethod
    def _touch(db: sqlite3.Connection, token_id: int) -> None:
        with transaction(db, write=True):
            db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (time.time(), token_id))

    async def check_login(self, username: str, password: str) -> User | None:
        """The user if the password is right and the user active; the KDF always runs."""
        row = await self._db.call(self._user_row, username)
        encoded = None if row is None else row["password"]
        ok = await verify_password_async(password, encoded)
        if not ok or row is None or row["disabled"]:
            return None
        return _user(row)

    @staticmethod
    def _user_row(db: sqlite3.Connection, username: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM users WHERE username = ?", (username,)
        ).fetchone()
        return row

    # --- users ---------------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        role: Role,
        scope: Scope,
        password: str | None,
        created_by: str,
    ) -> User:
        check_username(username)
        hashed = None
        if password is not None:
            check_password_strength(password)
            redact.add(password)
            hashed = await hash_password_async(password)
        return await self._db.call(self._create_user, username, role, scope, hashed, created_by)

    @staticmethod
    def _create_user(
        db: sqlite3.Connection,
        username: str,
        role: Role,
        scope: Scope,
        hashed: str | None,
        created_by: str,
    ) -> User:
        with transaction(db, write=True):
            return _insert_user(db, username, role, scope, hashed, created_by)

    async def users(self) -> list[User]:
        return await self._db.call(self._users)

    @staticmethod
    def _users(db: sqlite3.Connection) -> list[User]:
        return [_user(row) for row in db.execute("SELECT * FROM users ORDER BY id")]

    async def user(self, user_id: int) -> User:
        return await self._db.call(self._get_user, user_id)

    @staticmethod
    def _get_user(db: sqlite3.Connection, user_id: int) -> User:
        row = db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return _user(row)

    async def user_named(self, username: str) -> User:
        row = await self._db.call(self._user_row, username)
        if row is None:
            raise NotFound(f"user {username} does not exist")
        return _user(row)

    async def update_user(
        self,
        user_id: int,
        *,
        role: Role | None = None,
        scope: Scope | None = None,
        password: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        hashed = None
        if password is not None:
            check_password_strength(password)
            redact.add(password)
            hashed = await hash_password_async(password)
        return await self._db.call(self._update_user, user_id, role, scope, hashed, disabled)

    @staticmethod
    def _update_user(
        db: sqlite3.Connection,
        user_id: int,
        role: Role | None,
        scope: Scope | None,
        hashed: str | None,
        disabled: bool | None,
    ) -> User:
        with transaction(db, write=True):
            user = Directory._get_user(db, user_id)
            if role is not None:
                db.execute("UPDATE users SET role = ? WHERE id = ?", (role.value, user_id))
            if scope is not None:
                regions, classes = scope.to_json()
                db.execute(
                    "UPDATE users SET regions = ?, classes = ? WHERE id = ?",
                    (regions, classes, user_id),
                )
            if hashed is not None:
                db.execute("UPDATE users SET password = ? WHERE id = ?", (hashed, user_id))
            if disabled is not None:
                db.execute("UPDATE users SET disabled = ? WHERE id = ?", (disabled, user_id))
            Directory._keep_an_admin(db, user.username)
            return Directory._get_user(db, user_id)

    async def delete_user(self, user_id: int) -> User:
        return await self._db.call(self._delete_user, user_id)

    @staticmethod
    def _delete_user(db: sqlite3.Connection, user_id: int) -> User:
        with transaction(db, write=True):
            user = Directory._get_user(db, user_id)
            db.execute("DELETE FROM users WHERE id = ?", (user_id,))
            Directory._keep_an_admin(db, user.username)
        return user

    @staticmethod
    def _keep_an_admin(db: sqlite3.Connection, changed: str) -> None:
        """Refuse (roll back) a change that leaves no active, unrestricted admin."""
        row = db.execute(
            "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled "
            "AND regions IS NULL AND classes IS NULL"
        ).fetchone()
        if not row[0]:
            raise Conflict(
                f"changing {changed} would leave no active admin with unrestricted scope"
            )

    # --- tokens --------------------------------------------------------------------------

    async def create_token(
        self, user_id: int, name: str, expires_at: float | None
    ) -> tuple[str, TokenInfo]:
        """A new token for the user: the token text is returned here and never again."""
        token = new_token()
        info = await self._db.call(self._create_token, user_id, name, token, expires_at)
        return token, info

    @staticmethod
    def _create_token(
        db: sqlite3.Connection, user_id: int, name: str, token: str, expires_at: float | None
    ) -> TokenInfo:
        with transaction(db, write=True):
            Directory._get_user(db, user_id)
            return _insert_token(db, user_id, name, token, expires_at)

    async def tokens(self, user_id: int | None = None) -> list[TokenInfo]:
        return await self._db.call(self._tokens, user_id)

    @staticmethod
    def _tokens(db: sqlite3.Connection, user_id: int | None) -> list[TokenInfo]:
        if user_id is None:
            rows = db.execute(_TOKEN_SELECT + " ORDER BY t.id")
        else:
            rows = db.execute(_TOKEN_SELECT + " WHERE t.user_id = ? ORDER BY t.id", (user_id,))
        return [_token(row) for row in rows]

    async def token(self, token_id: int) -> TokenInfo:
        return await self._db.call(self._get_token, token_id)

    @staticmethod
    def _get_token(db: sqlite3.Connection, token_id: int) -> TokenInfo:
        row = db.execute(_TOKEN_SELECT + " WHERE t.id = ?", (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"token {token_id} does not exist")
        return _token(row)

    async def revoke_token(self, token_id: int) -> TokenInfo:
        return await self._db.call(self._revoke_token, token_id)

    @staticmethod
    def _revoke_token(db: sqlite3.Connection, token_id: int) -> TokenInfo:
        with transaction(db, write=True):
            Directory._get_token(db, token_id)
            db.execute(
                "UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                (time.time(), token_id),
            )
            return Directory._get_token(db, token_id)


def parse_scope(regions: Iterable[str] | None, classes: Iterable[str] | None) -> Scope:
    """A scope from API or CLI input; None for either part means unrestricted there."""
    try:
        return Scope(
            regions=None if regions is None else tuple(regions),
            classes=None if classes is None else frozenset(CameraClass(c) for c in classes),
        )
    except ValueError as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput("classes must be A, B or C", field="classes") from None


def print_once(token: str) -> None:
    """The first start's admin token: to standard output, not the log (logs are shipped)."""
    print(
        "\n*** sharpeyes first start: no users yet, so an admin was created.\n"
        f"*** Its API token, shown this once (Authorization: Bearer …):\n\n    {token}\n\n"
        "*** Store it now; create named users and tokens with it (POST /api/v1/users,\n"
        "*** /api/v1/tokens), then revoke it (DELETE /api/v1/tokens/1).\n",
        file=sys.stdout,
        flush=True,
    )
