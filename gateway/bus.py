"""The event bus: analytics faults, ONVIF alarms, school alarms, camera health changes.

Two backends with one interface:

- :class:`MemoryBus` (default): in-process, keeps the last ``retain`` events so a client
  that reconnects with the id of the last event it saw misses nothing that is retained.
- :class:`RedisBus`: a Redis Stream (``XADD``/``XREAD``), shared by several gateway nodes;
  the police sub-platform may also read the stream itself with a consumer group.

Event ids are ordered strings of the Redis Stream form ``<milliseconds>-<sequence>`` in both
backends, so ``after=`` resumes the same way whichever backend is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # e.g. "black", "motion", "alarm_input", "emergency", "device_offline"
    source: str  # "analytics", "onvif", "alarm", "recorder", "hub"
    camera: str | None = None
    device: str | None = None  # a non-camera device, e.g. an alarm box
    start: float = field(default_factory=time.time)  # wall-clock epoch seconds
    end: float | None = None
    score: float | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable details
    id: str = ""  # assigned on publish

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        return cls(**json.loads(text))


def id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class Bus(Protocol):
    async def publish(self, event: Event) -> Event:
        """Deliver ``event``; returns it with its id."""
        ...

    def subscribe(
        self, *, types: Collection[str] | None = None, after: str | None = None
    ) -> AsyncIterator[Event]:
        """Events from now on (or after the id ``after``), optionally of some types only."""
        ...

    async def close(self) -> None: ...


class MemoryBus:
    def __init__(self, retain: int = 10_000, queue_size: int = 1_000) -> None:
        self._history: deque[Event] = deque(maxlen=retain)
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size
        self._last = (0, 0)

    def _next_id(self) -> str:
        ms = int(time.time() * 1000)
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return f"{self._last[0]}-{self._last[1]}"

    async def publish(self, event: Event) -> Event:
        event = replace(event, id=self._next_id())
        self._history.append(event)
        for queue in self._queues:
            if queue.full():  # a stuck subscriber loses its oldest event, never blocks others
                queue.get_nowait()
            queue.put_nowait(event)
        return event

    async def subscribe(
        self, *, types: Collection[str] | None = None, after: str | None = None
    ) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            if after is not None:
                mark = id_key(after)
                for event in list(self._history):
                    if id_key(event.id) > mark and (types is None or event.type in types):
                        yield event
            while True:
                event = await queue.get()
                if after is not None and id_key(event.id) <= id_key(after):
                    continue  # already replayed from history
                if types is None or event.type in types:
                    yield event
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        self._queues.clear()


class RedisBus:
    """Events in the Redis Stream ``stream``, trimmed to about ``retain`` entries."""

    def __init__(
        self,
        url: str,
        stream: str = "sharpeyes:events",
        retain: int = 100_000,
        block_ms: int = 5000,
    ):
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self.stream = stream
        self._retain = retain
        self._block_ms = block_ms  # how long one XREAD waits for news

    async def publish(self, event: Event) -> Event:
        payload = replace(event, id="").to_json()
        raw_id = await self._redis.xadd(
            self.stream, {"event": payload}, maxlen=self._retain, approximate=True
        )
        return replace(event, id=raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id))

    async def subscribe(
        self, *, types: Collection[str] | None = None, after: str | None = None
    ) -> AsyncIterator[Event]:
        # "$" means "after the newest entry at the moment of this XREAD": kept across calls
        # it would skip whatever arrives between two reads. Pin it to a real id once.
        cursor = after or await self._last_id()
        while True:
            # RESP2 reply shape: [(stream, [(id, {field: value}), ...])]
            reply: Any = await self._redis.xread(
                {self.stream: cursor}, block=self._block_ms, count=100
            )
            for _stream, entries in reply or ():
                for raw_id, fields in entries:
                    cursor = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                    event = replace(Event.from_json(fields[b"event"]), id=cursor)
                    if types is None or event.type in types:
                        yield event

    async def _last_id(self) -> str:
        newest: Any = await self._redis.xrevrange(self.stream, count=1)
        if not newest:
            return "0-0"
        raw_id = newest[0][0]
        return raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._redis.aclose()


def create_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else MemoryBus()
