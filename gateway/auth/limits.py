"""Request limits: body size, failed-credential slow-down and lock-out, per-principal rate.

All in memory, per gateway process: enough to stop guessing and floods at one node; a
cluster behind a load balancer multiplies the allowance by its node count.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import TooManyRequests

MAX_KEYS = 100_000  # tracked addresses and users; the oldest are forgotten beyond this
MAX_DELAY = 4.0


class Failures:
    """Failed logins or bad tokens per key (address, user name).

    Every failure is answered late (0.25 s doubling per recent failure, at most 4 s), and
    after ``allowed`` failures within ``window`` seconds the key is refused outright (429)
    until the oldest failure ages out. A success does not clear the count: an attacker who
    knows one password must not reset the counter of another account by using it.
    """

    def __init__(self, allowed: int, window: float) -> None:
        self.allowed = allowed
        self.window = window
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._seen[key]
        return times

    def check(self, *keys: str) -> None:
        """429 if any key has used up its failures."""
        now = time.monotonic()
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.allowed:
                raise TooManyRequests(
                    "too many failed attempts; try again later",
                    retry_after=times[0] + self.window - now,
                )

    async def failed(self, *keys: str) -> None:
        """Count a failure against every key, then wait the slow-down."""
        now = time.monotonic()
        worst = 0
        for key in keys:
            times = self._recent(key, now)
            times.append(now)
            self._seen[key] = times
            self._seen.move_to_end(key)
            worst = max(worst, len(times))
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        await asyncio.sleep(min(MAX_DELAY, 0.25 * 2 ** (worst - 1)))


class RateLimiter:
    """A token bucket per principal: ``rate`` requests a second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> None:
        now = time.monotonic()
        level, then = self._buckets.pop(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - then) * self.rate)
        if level < 1:
            self._buckets[key] = (level, now)
            raise TooManyRequests("request rate limit reached", retry_after=(1 - level) / self.rate)
        self._buckets[key] = (level - 1, now)
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)


class BodyLimit:
    """ASGI middleware: refuses request bodies over ``limit`` bytes with 413.

    Checks Content-Length up front and counts the bytes of chunked bodies as they arrive,
    so a client cannot stream an unbounded body into memory either way.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await self._refuse(send)
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Raised inside the app's body read: its HTTPException handling answers.
                    raise HTTPException(413, f"the request body exceeds {self.limit} bytes")
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"code":"request_too_large","message":"the request body exceeds '
            + str(self.limit).encode()
            + b' bytes"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
