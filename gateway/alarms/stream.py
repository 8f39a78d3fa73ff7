"""What ``GET /api/v1/events/stream`` follows: the bus, backed by the event log.

A client resumes with the id of the last message it saw (SSE ``Last-Event-ID``). Most of
the time the bus has everything after it (Redis keeps its stream across gateway restarts;
the in-process bus keeps the last 10 000 messages). The one case it cannot serve is the
in-process bus after a restart: the client's id belongs to the previous process, whose
messages are gone with it. Then the event log, which persisted every event before it was
published, supplies the latest state of every event touched since that id's time, and the
bus of this process follows from its first message; what both deliver is sent once.

A replayed event is the latest version of that event, not each intermediate one: an alarm
acknowledged and closed while the client was away arrives once, closed, with the
acknowledgement's fields in its data. Consumers already recognise versions by
``data.event_id`` and ``data.version`` (the event log's delivery is at least once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import replace

from gateway.bus import Bus, Event, MemoryBus, id_key
from gateway.eventlog import EventLog

log = logging.getLogger(__name__)

# Events are dated by their own times (an analytics fault's end may precede its
# publication by seconds); reaching back this far covers the difference.
REPLAY_SLACK = 300.0
REPLAY_LIMIT = 10_000


class EventStream:
    """Create with the gateway, before the event log publishes anything."""

    def __init__(self, bus: Bus, events: EventLog) -> None:
        self._bus = bus
        self._events = events
        # Every message of this process's in-process bus has an id after this one
        # (``after`` is exclusive: one millisecond back keeps a message of this very one).
        started = int(time.time() * 1000) - 1
        self.horizon = f"{started}-0" if isinstance(bus, MemoryBus) else None

    async def follow(
        self, *, types: Collection[str] | None = None, after: str | None = None
    ) -> AsyncIterator[Event]:
        """Messages after ``after`` (a message id), then live ones. Messages replayed from
        the event log have an empty ``id`` (they are not bus messages), but the last one."""
        if after is None or self.horizon is None or id_key(after) >= id_key(self.horizon):
            async for event in self._bus.subscribe(types=types, after=after):
                yield event
            return
        since = id_key(after)[0] / 1000 - REPLAY_SLACK
        page = await self._events.query(types=types, since=since, limit=REPLAY_LIMIT)
        if page.total > len(page.items):
            log.warning(
                "events stream: %d events since %s, only the newest %d replayed",
                page.total,
                after,
                len(page.items),
            )
        sent: dict[str, int] = {}
        replay = sorted(page.items, key=lambda r: id_key(r.id))
        for n, record in enumerate(replay, 1):
            sent[record.id] = record.version
            # Only the last carries an id, this process's horizon: a client that got it
            # resumes from this bus; one cut off before it is replayed to again.
            yield replace(record.message(), id=self.horizon if n == len(replay) else "")
        # The query came first: whatever changed since is in this process's bus history.
        async for event in self._bus.subscribe(types=types, after=self.horizon):
            key, version = event.data.get("event_id"), event.data.get("version")
            if isinstance(key, str) and isinstance(version, int) and version <= sent.get(key, 0):
                continue
            yield event
