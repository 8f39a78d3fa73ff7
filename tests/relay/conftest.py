"""A gateway app in this process with its relay on 127.0.0.1, and loopback-only clients.

aioice never offers 127.0.0.1 as a candidate; the gateway is told to (a setting), and the
test clients' aioice is patched here, in the test process only, so that all media stays on
loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from aioice import ice as aioice_ice

from tests.credentials import LOOPBACK
from tests.inprocess import gateway_client

DEMO_ID = "11010500001320000001"  # the demo camera's default id
RTSP_ID = "11010500001320000002"
# The test cameras live on this host, which the camera network policy refuses by default.
BASE = (
    """
hub: {probe_interval: 3600, idle_stop_after: 2, open_timeout: 5, read_timeout: 5}
relay: {ice: {host_addresses: ["127.0.0.1"]}, start_timeout: 8}
"""
    + LOOPBACK
)

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice_ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
def make_gateway(tmp_path: Path) -> GatewayFactory:
    """``async with make_gateway(extra_yaml) as http``: the app behind an httpx client that
    signs in as the suite's admin; ``gateway_of(http)`` is its :class:`Gateway`."""

    @asynccontextmanager
    async def make(extra: str = "") -> AsyncIterator[httpx.AsyncClient]:
        async with gateway_client(tmp_path / "data", BASE + extra) as http:
            yield http

    return make


def demo(url: str) -> str:
    return f"demo: {{url: '{url}'}}\n"


def rtsp_camera(url: str, sub_url: str | None = None) -> str:
    sub = f", sub_url: '{sub_url}'" if sub_url else ""
    return f"""
cameras:
  - {{id: "{RTSP_ID}", name: "RTSP test camera", class: A, region: "110105",
     owner_unit: "test", sector: police, source: {{main_url: '{url}'{sub}}}}}
"""
