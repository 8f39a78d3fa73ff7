"""Shared pieces of the alarm tests: the real Redis server (tests/test_bus.py's fixture)."""

from __future__ import annotations

import time

import pytest
import redis

from tests.test_bus import redis_url

__all__ = ["redis_url"]


@pytest.fixture(scope="module")
def redis_ready(redis_url: str) -> str:
    """``redis_url`` once the server answers: ``--daemonize yes`` returns before it listens."""
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.close()
    return redis_url
