"""The gateway's security service: who is calling, within which limits.

``Gateway.security`` (one per gateway) authenticates requests — a bearer token
(``Authorization: Bearer se_…``) or the web page's session cookie — applies the failed
credential slow-down and the per-principal request rate, and tracks live views so that
each principal's WHEP sessions are limited and each view's end is audited with its
duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from starlette.requests import Request

from gateway.audit import Action, AuditLog
from gateway.auth.db import SecurityDb
from gateway.auth.limits import Failures, RateLimiter
from gateway.auth.principals import TOKEN_PREFIX, Directory, Principal, anonymous, print_once
from gateway.auth.sessions import COOKIE, Sessions, same_origin
from gateway.errors import Forbidden, TooManyRequests, Unauthenticated
from gateway.settings import SecuritySettings

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WATCH_INTERVAL = 1.0


class LiveSession(Protocol):
    """What the relay's session offers (gateway/relay/whep.py WhepSession)."""

    @property
    def id(self) -> str: ...
    @property
    def closed(self) -> bool: ...


_S = TypeVar("_S", bound=LiveSession)


@dataclass(slots=True)
class _View:
    principal: Principal
    camera_id: str
    stream: str
    session: LiveSession | None
    started: float


class LiveViews:
    """Live views per principal: the limit, and live_start/live_stop audit entries.

    The relay stays unaware of principals: a view is registered when its WHEP offer is
    answered, and a watcher notices the relay session's ``closed`` flag (DELETE, ICE
    failure, reaping, shutdown) and records the stop with the duration.
    """

    def __init__(self, audit: AuditLog, limit: int) -> None:
        self._audit = audit
        self.limit = limit
        self._views: list[_View] = []
        self._watcher: asyncio.Task[None] | None = None

    def count(self, principal: Principal) -> int:
        return sum(1 for v in self._views if v.principal.key == principal.key)

    async def start(
        self,
        principal: Principal,
        camera_id: str,
        stream: str,
        open_session: Callable[[], Awaitable[tuple[_S, str]]],
    ) -> tuple[_S, str]:
        """Open a view through ``open_session`` (the relay's ``open``) within the limit.

        Returns what ``open_session`` returned: ``(session, sdp_answer)``.
        """
        if self.count(principal) >= self.limit:
            raise TooManyRequests(
                f"at most {self.limit} live views at once per user; close one first",
                retry_after=5,
                code="too_many_live_views",
            )
        # Reserved before the first await: concurrent offers count against the limit.
        view = _View(principal, camera_id, stream, None, time.monotonic())
        self._views.append(view)
        try:
            session, answer = await open_session()
        except BaseException:
            self._views.remove(view)
            raise
        view.session = session
        view.started = time.monotonic()
        await self._audit.record(
            principal,
            Action.LIVE_START,
            camera=camera_id,
            detail={"stream": stream, "session": session.id[:6]},
        )
        self._ensure_watcher()
        return session, answer

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="live-views")

    async def _watch(self) -> None:
        while self._views:
            await asyncio.sleep(WATCH_INTERVAL)
            await self._sweep(final=False)

    async def _sweep(self, *, final: bool) -> None:
        for view in list(self._views):
            if view.session is None or not (final or view.session.closed):
                continue
            self._views.remove(view)
            await self._audit.record(
                view.principal,
                Action.LIVE_STOP,
                camera=view.camera_id,
                detail={
                    "stream": view.stream,
                    "session": view.session.id[:6],
                    "seconds": round(time.monotonic() - view.started, 1),
                },
            )

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._sweep(final=True)


class Security:
    def __init__(
        self, settings: SecuritySettings, db: SecurityDb, directory: Directory, audit: AuditLog
    ) -> None:
        self.settings = settings
        self.db = db
        self.directory = directory
        self.audit = audit
        self.sessions = Sessions(settings)
        self.failures = Failures(settings.login_failures, settings.failure_window)
        self.rate = RateLimiter(settings.requests_per_second, settings.request_burst)
        self.live = LiveViews(audit, settings.live_sessions_per_principal)

    @classmethod
    async def open(
        cls,
        settings: SecuritySettings,
        data_dir: Path,
        region_of: Callable[[str], Awaitable[str | None]],
        environ: dict[str, str] | None = None,
    ) -> Security:
        """Open ``security.sqlite3`` and bootstrap the first admin (see Directory.bootstrap)."""
        db = await SecurityDb.open(data_dir)
        try:
            directory = Directory(db)
            made = await directory.bootstrap(dict(os.environ if environ is None else environ))
        except BaseException:
            await db.close()
            raise
        if made is not None:
            log.warning("first start: an admin token was printed to standard output, once")
            print_once(made)
        return cls(settings, db, directory, AuditLog(db, region_of))

    async def close(self) -> None:
        await self.live.close()
        await self.db.close()

    async def authenticate(self, request: Request) -> Principal:
        """The caller of ``request``: 401 without valid credentials, 429 when limited."""
        address = request.client.host if request.client else "-"
        header = request.headers.get("authorization")
        cookie = request.cookies.get(COOKIE)
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("use Authorization: Bearer <token>")
            principal = await self._by_token(token.strip(), address)
        elif cookie is not None:
            principal = await self._by_cookie(cookie, address)
            if request.method not in SAFE_METHODS and not same_origin(request):
                raise Forbidden("cross-site request refused", code="cross_site_request")
        else:
            raise Unauthenticated("sign in, or send Authorization: Bearer <token>")
        self.rate.take(principal.key)
        return principal

    async def _by_token(self, token: str, address: str) -> Principal:
        keys = (f"addr:{address}",)
        self.failures.check(*keys)
        found = await self.directory.user_for_token(token)
        if found is None:
            hint = token[:7] if token.startswith(TOKEN_PREFIX) else ""  # not a pasted password
            await self.audit.record(
                anonymous(address, via="token"),
                Action.TOKEN_REJECTED,
                detail={"hint": hint},
                outcome="failed",
            )
            await self.failures.failed(*keys)
            raise Unauthenticated("the token is not valid (unknown, expired or revoked)")
        user, info = found
        return user.principal(f"token:{info.id}", address)

    async def _by_cookie(self, cookie: str, address: str) -> Principal:
        user_id = self.sessions.user_of(cookie)
        if user_id is not None:
            with contextlib.suppress(LookupError):
                user = await self.directory.user(user_id)
                if not user.disabled:
                    return user.principal("session", address)
        raise Unauthenticated("the session has ended; sign in again")
