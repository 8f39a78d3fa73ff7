"""Suite-wide: the bootstrap admin token (tests/credentials.py) and the secret-leak guard."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from gateway.redact import redact
from tests.credentials import ADMIN_TOKEN, leaked

pytest_plugins = ["tests.peers.fixtures"]

# Set before any gateway starts, in this process and (inherited) in every subprocess.
os.environ["SHARPEYES_ADMIN_TOKEN"] = ADMIN_TOKEN


@pytest.fixture(autouse=True)
def no_secret_leaks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Fail a test whose HTTP responses (httpx, in-process or not) or captured log records
    contain a configured secret: camera passwords, the secret key, the admin token, user
    passwords — everything registered with gateway.redact. Raw records are checked, before
    any redacting filter: code must not rely on the last line of defence."""
    seen: list[tuple[str, bytes]] = []

    def keep(request: httpx.Request, response: httpx.Response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        body = response.content if response.is_stream_consumed else b""
        seen.append((f"response to {request.method} {request.url.path}", headers + body))

    async_send, sync_send = httpx.AsyncClient.send, httpx.Client.send

    async def send_async(self: httpx.AsyncClient, request: httpx.Request, **kw: object) -> object:
        response = await async_send(self, request, **kw)  # type: ignore[arg-type]
        keep(request, response)
        return response

    def send_sync(self: httpx.Client, request: httpx.Request, **kw: object) -> object:
        response = sync_send(self, request, **kw)  # type: ignore[arg-type]
        keep(request, response)
        return response

    monkeypatch.setattr(httpx.AsyncClient, "send", send_async)
    monkeypatch.setattr(httpx.Client, "send", send_sync)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    seen.extend(
        (f"log record {r.name}:{r.lineno}", (r.getMessage() + (r.exc_text or "")).encode())
        for r in records
    )
    found = leaked(redact.secrets, seen)
    assert not found, f"a configured secret leaked in: {', '.join(found[:5])}"
