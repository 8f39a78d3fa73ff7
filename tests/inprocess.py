"""The gateway app in the test process, behind an httpx client (no sockets, real app).

For tests of the API that need no separate process; ``tests/e2e/process.py`` runs the real
``sharpeyes serve`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway import settings as config
from gateway.app import Gateway, create_app
from tests.credentials import ADMIN_HEADERS


@asynccontextmanager
async def gateway_client(
    data_dir: Path,
    config_text: str = "",
    *,
    headers: dict[str, str] | None = ADMIN_HEADERS,
    timeout: float = 5.0,
) -> AsyncIterator[httpx.AsyncClient]:
    """Start the gateway with ``config_text`` (YAML) on ``data_dir``; stop it on exit.
    The client signs in as the suite's admin unless ``headers`` says otherwise."""
    settings = config.parse(config_text, environ={})
    settings.data_dir = data_dir
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers=headers or {}, timeout=timeout
        ) as http:
            http.gateway = app.state.gateway  # type: ignore[attr-defined]
            yield http


def gateway_of(http: httpx.AsyncClient) -> Gateway:
    """The :class:`Gateway` behind a client made by :func:`gateway_client`."""
    gateway: Gateway = http.gateway  # type: ignore[attr-defined]
    return gateway
