"""Signatures, the replay cache (in memory and on a real Redis) and query tokens."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from adapters.alarms import errors
from adapters.alarms.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MemoryReplayCache,
    RedisReplayCache,
    ReplayCache,
    check_replay,
    replay_key,
    sign,
    token_hash,
    verify,
    verify_token,
)

SECRET = "correct horse battery staple"
BODY = b'{"type":"emergency","nonce":"1"}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    headers = sign(SECRET, BODY, now=1_700_000_000.7)
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    # What a vendor writes from the documentation alone.
    mac = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == "sha256=" + mac


def test_verify_accepts_a_fresh_signature_and_returns_its_time() -> None:
    h = sign(SECRET, BODY, now=1000.0)
    assert (
        verify(SECRET, BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], window=60, now=1050) == 1000
    )
    upper = h[SIGNATURE_HEADER].upper().replace("SHA256=", "sha256=")
    assert verify(SECRET, BODY, h[TIMESTAMP_HEADER], upper, window=60, now=1000) == 1000


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"secret": "another secret of some length"}, errors.BadSignature),
        ({"body": BODY + b" "}, errors.BadSignature),
        ({"timestamp": "1001"}, errors.BadSignature),  # re-dated: the MAC covers the time
        ({"timestamp": "1e3"}, errors.BadTimestamp),
        ({"timestamp": None}, errors.SignatureMissing),
        ({"signature": None}, errors.SignatureMissing),
        ({"now": 1061.0}, errors.StaleTimestamp),
        ({"now": 939.0}, errors.StaleTimestamp),  # from the future: a box clock running fast
    ],
)
def test_verify_refuses(change: dict[str, object], error: type[errors.AlarmAuthFailed]) -> None:
    h = sign(SECRET, BODY, now=1000.0)
    args: dict[str, object] = {
        "secret": SECRET,
        "body": BODY,
        "timestamp": h[TIMESTAMP_HEADER],
        "signature": h[SIGNATURE_HEADER],
        "now": 1000.0,
        **change,
    }
    with pytest.raises(error) as caught:
        verify(
            args["secret"], args["body"], args["timestamp"], args["signature"],  # type: ignore[arg-type]
            window=60, now=args["now"],  # type: ignore[arg-type]
        )  # fmt: skip
    assert SECRET not in str(caught.value) and caught.value.status in (401, 409)


def test_stale_message_tells_the_box_the_gateway_time() -> None:
    h = sign(SECRET, BODY, now=1000.0)
    with pytest.raises(errors.StaleTimestamp, match="gateway's clock \\(2000\\)"):
        verify(SECRET, BODY, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], window=60, now=2000)


async def exercise(cache: ReplayCache) -> None:
    now = time.time()
    key = replay_key("34150200001340000001", "sha256=ABCdef")
    assert key.endswith(":abcdef")
    assert await cache.first_time(key, now + 60)
    assert not await cache.first_time(key, now + 60)
    await check_replay(cache, key + "0", int(now), 60)
    with pytest.raises(errors.ReplayedRequest):
        await check_replay(cache, key + "0", int(now), 60)
    assert await cache.first_time("expired", now - 1)
    assert await cache.first_time("other", now + 60)  # a later insert drops expired keys
    assert await cache.first_time("expired", now + 60)


async def test_memory_replay_cache() -> None:
    await exercise(MemoryReplayCache())


async def test_memory_replay_cache_is_bounded() -> None:
    cache = MemoryReplayCache(limit=3)
    for n in range(10):
        assert await cache.first_time(str(n), time.time() + 60)
    assert len(cache._keys) == 3


async def test_redis_replay_cache_is_shared_between_nodes(redis_ready: str) -> None:
    one, two = RedisReplayCache(redis_ready), RedisReplayCache(redis_ready)
    try:
        await exercise(one)
        key = f"shared-{time.time()}"
        assert await one.first_time(key, time.time() + 60)
        assert not await two.first_time(key, time.time() + 60)  # the other node knows it
    finally:
        await one.close()
        await two.close()


def test_query_token_is_stored_hashed_and_checked() -> None:
    token = "t" * 32
    stored = token_hash(token)
    assert token not in stored
    verify_token(stored, token)
    with pytest.raises(errors.BadToken):
        verify_token(stored, "x" * 32)
    with pytest.raises(errors.BadToken):
        verify_token(stored, None)
    with pytest.raises(errors.SignatureMissing, match="signed requests only"):
        verify_token(None, token)
