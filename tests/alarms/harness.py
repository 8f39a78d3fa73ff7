"""What the alarm tests share: a gateway served over real HTTP, API clients per user.

:class:`ServerThread` runs the app under uvicorn on a loopback port in a thread with its
own event loop, so a test talks to it exactly as the boxes, the wall and the police
sub-platform do (real sockets, real streaming: the SSE stream cannot go through an
in-memory transport, which waits for the end of a response), and can still reach into the
gateway (``call``) to run a check round at a chosen time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import uvicorn

from gateway.app import Gateway, create_app
from gateway.settings import Settings
from tests.peers.ports import free_port

_T = TypeVar("_T")


class ServerThread:
    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),))

    async def _serve(self) -> None:
        await self.server.serve()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        for _ in range(600):
            if self.server.started or not self.thread.is_alive():
                break
            threading.Event().wait(0.05)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.loop.close()

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    def call(self, work: Coroutine[Any, Any, _T], timeout: float = 20.0) -> _T:
        """Run ``work`` on the gateway's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)


class Api:
    """A user's view of the API: their bearer token on every request."""

    def __init__(self, base_url: str, token: str) -> None:
        self.token = token
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def __getattr__(self, method: str) -> Any:
        return getattr(self.http, method)  # get, post, patch, delete

    def user(self, username: str, role: str, regions: list[str] | None) -> Api:
        """Create a user (as this admin) and return an Api acting as it."""
        created = self.http.post(
            "/api/v1/users", json={"username": username, "role": role, "regions": regions}
        )
        assert created.status_code == 201, created.text
        token = self.http.post(
            "/api/v1/tokens", json={"name": "test", "user_id": created.json()["id"]}
        )
        assert token.status_code == 201, token.text
        return Api(str(self.http.base_url), token.json()["token"])
