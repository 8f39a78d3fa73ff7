"""A Server-Sent Events client in a thread, as the police sub-platform would run one.

It parses the stream by the WHATWG rules that matter here (``id:``, ``data:``, comments,
an event per blank line) and remembers the last id, so a test can drop the connection and
resume with ``Last-Event-ID`` the way EventSource does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


class SseClient:
    def __init__(self, url: str, token: str, last_event_id: str | None = None) -> None:
        self.url = url
        self.token = token
        self.last_event_id = last_event_id
        self.messages: list[dict[str, Any]] = []
        self.ids: list[str] = []  # the id of each message ("" when it had none)
        self.comments = 0
        self.status: int | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SseClient:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.wait_for(lambda: self.comments > 0, 20)  # the stream is open
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        try:
            with httpx.stream("GET", self.url, headers=headers, timeout=30) as response:
                self.status = response.status_code
                event_id: str | None = None
                data: list[str] = []
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        with self._changed:
                            self.comments += 1
                            self._changed.notify_all()
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "":
                        with self._changed:
                            if event_id is not None:
                                self.last_event_id = event_id
                            if data:
                                self.messages.append(json.loads("\n".join(data)))
                                self.ids.append(event_id or "")
                            self._changed.notify_all()
                        event_id, data = None, []
        except httpx.HTTPError:
            pass  # the gateway went away: the test resumes with last_event_id

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"SSE: condition not met in {timeout} s: {self.steps()}")
                self._changed.wait(left)

    def steps(self) -> list[tuple[str, Any, Any]]:
        """(type, state, test) of each message: the story as the sub-platform saw it."""
        return [(m["type"], m["data"].get("state"), m["data"].get("test")) for m in self.messages]

    def of(self, event_id: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["data"].get("event_id") == event_id]
