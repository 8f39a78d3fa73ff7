"""Web-page sessions: a random cookie after a username/password login.

The cookie is ``HttpOnly`` (scripts cannot read it) and ``SameSite=Strict`` (no other site
can make the browser send it). Cookie-authenticated unsafe requests must also come from the
gateway's own page (``Origin`` or ``Sec-Fetch-Site``, see :func:`same_origin`): a
defence in depth for browsers or proxies that get SameSite wrong.

Sessions live in memory (a restart signs everyone out) and die after
``session_idle_minutes`` without a request or ``session_max_hours`` in all. Only the
SHA-256 of the cookie is kept.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from gateway.settings import SecuritySettings

COOKIE = "sharpeyes_session"
MAX_SESSIONS = 10_000


@dataclass(slots=True)
class Session:
    user_id: int
    created: float
    seen: float


class Sessions:
    def __init__(self, settings: SecuritySettings) -> None:
        self.idle = settings.session_idle_minutes * 60
        self.max_age = settings.session_max_hours * 3600
        self._by_digest: dict[str, Session] = {}

    @staticmethod
    def _digest(cookie: str) -> str:
        return hashlib.sha256(cookie.encode()).hexdigest()

    def create(self, user_id: int) -> str:
        self._expire()
        if len(self._by_digest) >= MAX_SESSIONS:  # oldest first: dicts keep insertion order
            del self._by_digest[next(iter(self._by_digest))]
        cookie = secrets.token_urlsafe(32)
        now = time.monotonic()
        self._by_digest[self._digest(cookie)] = Session(user_id, now, now)
        return cookie

    def user_of(self, cookie: str) -> int | None:
        key = self._digest(cookie)
        session = self._by_digest.get(key)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.seen > self.idle or now - session.created > self.max_age:
            del self._by_digest[key]
            return None
        session.seen = now
        return session.user_id

    def end(self, cookie: str) -> None:
        self._by_digest.pop(self._digest(cookie), None)

    def end_user(self, user_id: int) -> None:
        """Sign a user out everywhere (disabled, deleted, password changed)."""
        for key in [k for k, s in self._by_digest.items() if s.user_id == user_id]:
            del self._by_digest[key]

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [
            k
            for k, s in self._by_digest.items()
            if now - s.seen > self.idle or now - s.created > self.max_age
        ]:
            del self._by_digest[key]


def same_origin(request: Request) -> bool:
    """True if a browser says this request comes from the gateway's own pages.

    ``Sec-Fetch-Site`` (every current browser) or else ``Origin`` compared with ``Host``.
    A request with neither did not come from a browser's cross-site form or script.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def cookie_secure(settings: SecuritySettings, request: Request) -> bool:
    if settings.cookie_secure == "auto":
        return request.url.scheme == "https"
    return settings.cookie_secure == "always"
