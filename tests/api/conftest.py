"""An in-process gateway app (real hub, real SQLite, demo camera) behind an httpx client.

The client is the bootstrap admin (``tests/credentials.py``); loopback cameras are allowed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway import settings as config
from gateway.app import Gateway, create_app
from tests.credentials import ADMIN_HEADERS, LOOPBACK


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = config.parse(
        "hub: {probe_interval: 3600, idle_stop_after: 1, open_timeout: 3, read_timeout: 3}\n"
        + LOOPBACK,
        environ={},
    )
    settings.data_dir = tmp_path / "data"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers=ADMIN_HEADERS
        ) as http:
            http.gateway = app.state.gateway  # type: ignore[attr-defined]
            yield http


def gateway_of(client: httpx.AsyncClient) -> Gateway:
    gateway: Gateway = client.gateway  # type: ignore[attr-defined]
    return gateway
