"""HMAC-SHA256 request signatures, the replay cache, and per-device query tokens.

One scheme in both directions: boxes sign what they send to the gateway, and the gateway
signs the webhooks it pushes to platforms (gateway/alarms/webhooks.py), so a platform
verifies with the same few lines a vendor uses to sign.

``X-Sharpeyes-Signature: sha256=<hex>`` is HMAC-SHA256 keyed with the shared secret over
``"<timestamp>." + body`` (the timestamp as sent, in ASCII, then a dot, then the raw body
bytes). The timestamp is in the MAC so an old request cannot be re-dated; the body bytes are
used as they travelled, so no JSON canonicalisation is needed on either side.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import time
from typing import Protocol

from adapters.alarms.errors import (
    BadSignature,
    BadTimestamp,
    BadToken,
    ReplayedRequest,
    SignatureMissing,
    StaleTimestamp,
)

SIGNATURE_HEADER = "X-Sharpeyes-Signature"
TIMESTAMP_HEADER = "X-Sharpeyes-Timestamp"
_PREFIX = "sha256="


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Sharpeyes-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return _PREFIX + mac.hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The two headers that sign ``body`` now: what a box (or the gateway's webhooks) sends."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    sent_signature: str | None,
    *,
    window: float,
    now: float | None = None,
) -> int:
    """Check a signed request; return its timestamp. Raises an :class:`AlarmAuthFailed`.

    The MAC is checked before the clock, so a forger learns nothing about the window, and
    a genuine box with a wrong clock is told exactly that (with the gateway's time).
    """
    if not timestamp or not sent_signature:
        raise SignatureMissing(
            f"sign the request: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required"
            " (or use the device's query token, if it has one)"
        )
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise BadTimestamp(f"{TIMESTAMP_HEADER} must be whole seconds since the Unix epoch")
    expected = signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), sent_signature.strip().lower().encode()):
        raise BadSignature(
            f"{SIGNATURE_HEADER} does not match: sign '<timestamp>.' + the body with "
            "HMAC-SHA256 and the device's secret, as 'sha256=<hex>'"
        )
    now = time.time() if now is None else now
    sent = int(timestamp)
    if abs(now - sent) > window:
        raise StaleTimestamp(
            f"timestamp {sent} is {now - sent:+.0f} s from the gateway's clock ({int(now)}); "
            f"at most {window:g} s is accepted: check the box's time (NTP)"
        )
    return sent


def token_hash(token: str) -> str:
    """What is stored for a query token: enough to check one, useless to recover it."""
    return hashlib.sha256(token.encode()).hexdigest()


def verify_token(stored_hash: str | None, token: str | None) -> None:
    if stored_hash is None:
        raise SignatureMissing("this device accepts signed requests only")
    if not token or not hmac.compare_digest(stored_hash, token_hash(token)):
        raise BadToken("the query token does not match the device's")


class ReplayCache(Protocol):
    async def first_time(self, key: str, expires_at: float) -> bool:
        """Remember ``key`` until ``expires_at`` (epoch s); false if it was already there."""
        ...

    async def close(self) -> None: ...


def replay_key(device_id: str, sent_signature: str) -> str:
    # The signature is unique per (timestamp, body): the same alarm pressed twice differs
    # by its nonce or timestamp, a captured request sent again does not.
    return f"{device_id}:{sent_signature.strip().lower().removeprefix(_PREFIX)}"


async def check_replay(cache: ReplayCache, key: str, sent_at: int, window: float) -> None:
    # Past sent_at + window the timestamp check refuses the request anyway.
    if not await cache.first_time(key, sent_at + window):
        raise ReplayedRequest("this signed request was already received; sign each send anew")


class MemoryReplayCache:
    """Keys of one gateway process, bounded: the oldest go first when ``limit`` is reached."""

    def __init__(self, limit: int = 200_000) -> None:
        self._expiry: list[tuple[float, str]] = []
        self._keys: set[str] = set()
        self._limit = limit

    async def first_time(self, key: str, expires_at: float) -> bool:
        now = time.time()
        while self._expiry and (self._expiry[0][0] < now or len(self._keys) >= self._limit):
            self._keys.discard(heapq.heappop(self._expiry)[1])
        if key in self._keys:
            return False
        if expires_at < now:
            return True  # already outside the window: the clock check refuses it anyway
        self._keys.add(key)
        heapq.heappush(self._expiry, (expires_at, key))
        return True

    async def close(self) -> None:
        self._keys.clear()
        self._expiry.clear()


class RedisReplayCache:
    """Shared by every gateway node on one Redis: a replay sent to another node is caught."""

    def __init__(self, url: str, prefix: str = "sharpeyes:alarm-replay:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix

    async def first_time(self, key: str, expires_at: float) -> bool:
        ttl_ms = int((expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            return True  # already outside the window: the clock check refuses it anyway
        stored = await self._redis.set(self._prefix + key, b"1", nx=True, px=ttl_ms)
        return bool(stored)

    async def close(self) -> None:
        await self._redis.aclose()
