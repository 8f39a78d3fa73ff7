"""The event log: persisted before published, never lost across a restart, queried back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import eventlog
from gateway.bus import Bus, Event, MemoryBus, RedisBus, id_key
from gateway.errors import NotFound
from gateway.eventlog import EventLog
from tests.test_bus import redis_url, take

__all__ = ["redis_url"]  # the real Redis fixture, shared with tests/test_bus.py

CAM = "34150200001320000001"
OTHER = "34150200001320000002"
JPEG = b"\xff\xd8\xff\xe0 evidence \xff\xd9"


class DownBus(MemoryBus):
    """A bus that refuses everything until ``up`` is set (a Redis outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False

    async def publish(self, event: Event) -> Event:
        if not self.up:
            raise ConnectionError("redis is down")
        return await super().publish(event)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EventLog]:
    events = EventLog(tmp_path / "events", MemoryBus())
    await events.start()
    yield events
    await events.close()


def black(start: float, end: float | None = None, camera: str = CAM, **data: object) -> Event:
    return Event(type="black", source="analytics", camera=camera, start=start, end=end,
                 score=0.9, data=data)  # fmt: skip


async def test_record_persists_then_publishes_with_the_event_id(log: EventLog) -> None:
    messages = log.bus.subscribe()
    waiter = asyncio.ensure_future(take(messages, 2))
    await asyncio.sleep(0)
    first = await log.record(black(100.0, None, origin="live"), JPEG)
    second = await log.record(black(200.0, 260.0))
    assert first.published and second.published
    assert id_key(first.id) < id_key(second.id)
    got = await waiter
    assert [m.data["event_id"] for m in got] == [first.id, second.id]
    assert got[0].end is None and got[0].data["origin"] == "live"
    assert got[0].data["thumbnail"] == f"/api/v1/events/{first.id}/thumbnail.jpg"
    assert "thumbnail" not in got[1].data
    # The thumbnail is a file under the log's folder, named by the event, by UTC day.
    path = await log.thumbnail(first.id)
    assert path is not None and path.read_bytes() == JPEG
    assert path.relative_to(log.folder).parts == ("thumbnails", "1970-01-01", f"{first.id}.jpg")
    assert await log.thumbnail(second.id) is None
    with pytest.raises(NotFound):
        await log.thumbnail("1-0")


async def test_update_is_the_same_event_in_a_new_version(log: EventLog) -> None:
    opened = await log.record(black(100.0, None, origin="live"), JPEG)
    messages = log.bus.subscribe(after="0-0")
    closed = await log.update(opened.id, end=130.0, score=0.95, thumbnail=b"\xff\xd8 better")
    assert (closed.id, closed.version, closed.end, closed.score) == (opened.id, 2, 130.0, 0.95)
    assert closed.data == {"origin": "live"}
    got = await take(messages, 2)
    assert [(m.data["event_id"], m.data["version"], m.end) for m in got] == [
        (opened.id, 1, None),
        (opened.id, 2, 130.0),
    ]
    path = await log.thumbnail(opened.id)
    assert path is not None and path.read_bytes() == b"\xff\xd8 better"
    interrupted = await log.update(opened.id, end=140.0, data={"interrupted": True})
    assert interrupted.score == 0.95 and interrupted.data == {"origin": "live", "interrupted": True}


async def test_queries(log: EventLog) -> None:
    await log.record(black(100.0, 200.0))
    await log.record(black(150.0, None))  # still going on
    await log.record(black(300.0, 310.0, camera=OTHER))
    motion = await log.record(Event(type="motion", source="analytics", camera=CAM, start=400.0,
                                    end=420.0))  # fmt: skip
    await log.record(Event(type="alarm_input", source="onvif", camera=CAM, start=500.0, end=None))

    async def starts(**query: object) -> list[float]:
        return [r.start for r in (await log.query(**query)).items]  # type: ignore[arg-type]

    assert await starts() == [500.0, 400.0, 300.0, 150.0, 100.0]  # newest start first
    assert await starts(camera=CAM, types={"black"}) == [150.0, 100.0]
    assert await starts(types={"black", "motion"}, source="analytics") == [400, 300, 150, 100]
    # Overlap: an event that began before `since` and lasts into the range belongs to it.
    assert await starts(since=190.0, until=350.0) == [300.0, 150.0, 100.0]
    assert await starts(since=250.0, until=350.0) == [300.0, 150.0]
    assert await starts(open_only=True) == [500.0, 150.0]
    page = await log.query(limit=2, offset=1)
    assert [r.start for r in page.items] == [400.0, 300.0] and page.total == 5
    assert (await log.get(motion.id)).type == "motion"
    with pytest.raises(NotFound):
        await log.get("1-0")
    latest = {r.type: r.start for r in await log.latest(CAM, source="analytics")}
    assert latest == {"black": 150.0, "motion": 400.0}
    assert {r.start for r in await log.open_events(source="analytics")} == {150.0}


async def test_nothing_is_lost_across_an_outage_and_a_restart(tmp_path: Path) -> None:
    bus = DownBus()
    events = EventLog(tmp_path / "events", bus)
    await events.start()
    first = await events.record(black(100.0))
    second = await events.record(black(200.0, 210.0))
    assert not first.published and not second.published
    await events.close()  # the gateway stops (or crashes) before the bus comes back

    bus.up = True
    messages = bus.subscribe(after="0-0")
    again = EventLog(tmp_path / "events", bus)
    await again.start()  # publishes what is still unpublished, in order
    try:
        got = await take(messages, 2)
        assert [m.data["event_id"] for m in got] == [first.id, second.id]
        assert (await again.get(first.id)).published
        assert (await again.query()).total == 2
    finally:
        await again.close()


async def test_publication_is_retried_while_the_bus_is_down(tmp_path: Path) -> None:
    bus = DownBus()
    events = EventLog(tmp_path / "events", bus, retry_interval=0.1)
    await events.start()
    try:
        stored = await events.record(black(100.0))
        assert not stored.published
        messages = bus.subscribe(after="0-0")
        bus.up = True
        got = await take(messages, 1)
        assert got[0].data["event_id"] == stored.id
    finally:
        await events.close()


async def test_ids_never_go_back_with_the_clock(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await log.record(black(100.0))
    monkeypatch.setattr(eventlog.time, "time", lambda: 1_000.0)  # the clock stepped back
    second = await log.record(black(101.0))
    third = await log.record(black(102.0))
    assert id_key(first.id) < id_key(second.id) < id_key(third.id)
    assert id_key(second.id)[0] == id_key(first.id)[0]  # same millisecond, next sequence


async def test_prune_removes_old_ended_events_and_their_thumbnails(log: EventLog) -> None:
    old = await log.record(black(100.0, 200.0), JPEG)
    going_on = await log.record(black(150.0), JPEG)
    other_source = await log.record(Event(type="alarm_input", source="onvif", start=100.0,
                                          end=120.0))  # fmt: skip
    path = await log.thumbnail(old.id)
    assert path is not None
    assert await log.prune(1000.0, source="analytics") == 1
    assert not path.exists()
    assert {r.id for r in (await log.query()).items} == {going_on.id, other_source.id}


async def test_schema_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    db = sqlite3.connect(folder / "events.sqlite3")
    db.execute("CREATE TABLE schema_versions (name TEXT PRIMARY KEY, version INTEGER)")
    db.execute("INSERT INTO schema_versions VALUES ('eventlog', ?)", (eventlog.SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    events = EventLog(folder, MemoryBus())
    with pytest.raises(RuntimeError, match="newer release"):
        await events.start()
    await events.close()


async def test_redis_bus_carries_the_log_ids(tmp_path: Path, redis_url: str) -> None:
    bus: Bus = RedisBus(redis_url, stream="test:eventlog")
    events = EventLog(tmp_path / "events", bus)
    await events.start()
    try:
        messages = bus.subscribe(after="0-0")
        opened = await events.record(black(100.0), JPEG)
        await events.update(opened.id, end=110.0)
        got = await take(messages, 2)
        assert [(m.data["event_id"], m.data["version"]) for m in got] == [
            (opened.id, 1),
            (opened.id, 2),
        ]
        # Message ids are Redis's (the resume cursor), event ids the log's.
        assert got[0].id != opened.id and id_key(got[0].id) < id_key(got[1].id)
    finally:
        await events.close()
        await bus.close()
