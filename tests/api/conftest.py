"""An in-process gateway app (real hub, real SQLite, demo camera) behind an httpx client.

The client is the bootstrap admin (``tests/credentials.py``); loopback cameras are allowed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.credentials import LOOPBACK
from tests.inprocess import gateway_client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    text = "hub: {probe_interval: 3600, idle_stop_after: 1, open_timeout: 3, read_timeout: 3}\n"
    async with gateway_client(tmp_path / "data", text + LOOPBACK) as http:
        yield http
