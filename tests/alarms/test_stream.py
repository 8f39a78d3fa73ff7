"""The events stream's source: the bus, and the event log behind it across a restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.alarms.stream import EventStream
from gateway.bus import Event, MemoryBus, RedisBus
from gateway.eventlog import EventLog
from tests.test_bus import take

NOW = time.time()


def alarm(kind: str, start: float, end: float | None = None, **data: object) -> Event:
    # Times relative to now: the replay reaches back from the client's last message's time.
    return Event(
        type=kind,
        source="alarm",
        device="34150200001340000001",
        start=NOW + start,
        end=None if end is None else NOW + end,
        data={"region": "341502", **data},
    )


async def started(folder: Path, bus: MemoryBus | RedisBus) -> tuple[EventStream, EventLog]:
    log = EventLog(folder, bus)
    stream = EventStream(bus, log)  # as the gateway does: before the log publishes
    await log.start()
    return stream, log


async def test_live_and_resume_in_one_process(tmp_path: Path) -> None:
    stream, log = await started(tmp_path, MemoryBus())
    live = stream.follow()
    first = asyncio.ensure_future(take(live, 2))
    await asyncio.sleep(0)
    a = await log.record(alarm("emergency", 100.0))
    b = await log.record(alarm("test", 101.0, test=True))
    got = await first
    assert [m.data["event_id"] for m in got] == [a.id, b.id] and all(m.id for m in got)
    resumed = await take(stream.follow(after=got[0].id), 1)
    assert resumed[0].id == got[1].id
    only_tests = await take(stream.follow(types={"test"}, after="0-0"), 1)
    assert only_tests[0].type == "test"
    await log.close()


async def test_resume_after_a_restart_misses_nothing(tmp_path: Path) -> None:
    stream, log = await started(tmp_path, MemoryBus())
    seen = asyncio.ensure_future(take(stream.follow(), 1))
    await asyncio.sleep(0)
    a = await log.record(alarm("emergency", 100.0))
    last_seen = (await seen)[0].id
    # What the client missed before the restart: a new alarm, and a change to the first.
    b = await log.record(alarm("tamper", 101.0))
    await log.update(a.id, end=None, data={"state": "acknowledged"})
    closed = await log.record(alarm("device_offline", -900.0, end=-900.0))  # long over
    await log.close()

    stream, log = await started(tmp_path, MemoryBus())  # the new process, its bus empty
    c = await log.record(alarm("test", 102.0, test=True))  # after the restart
    await log.update(b.id, end=NOW + 103.0, data={"state": "closed"})  # b changes again
    resumed = stream.follow(after=last_seen)
    got = await take(resumed, 3)
    latest = {m.data["event_id"]: m.data["version"] for m in got}
    assert latest == {a.id: 2, b.id: 2, c.id: 1} and closed.id not in latest
    assert [m.id for m in got[:-1]] == ["", ""] and got[-1].id == stream.horizon
    # Live messages follow, with bus ids; the versions replayed are not sent twice.
    d = await log.record(alarm("emergency", 104.0))
    after_replay = await take(resumed, 1)
    assert after_replay[0].data["event_id"] == d.id and after_replay[0].id
    # A client that got the replay's last message resumes from this process's bus.
    again = await take(stream.follow(after=got[-1].id), 3)  # c, b closed, d: this bus
    assert [m.data["event_id"] for m in again][-1] == d.id
    await log.close()


async def test_redis_resumes_from_the_stream_itself(tmp_path: Path, redis_ready: str) -> None:
    bus = RedisBus(redis_ready, stream=f"test:{tmp_path.name}")
    stream, log = await started(tmp_path, bus)
    assert stream.horizon is None  # Redis keeps its stream across gateway restarts
    seen = asyncio.ensure_future(take(stream.follow(), 1))
    await asyncio.sleep(0.2)
    await log.record(alarm("emergency", 100.0))
    last = (await seen)[0].id
    b = await log.record(alarm("tamper", 101.0))
    got = await take(stream.follow(after=last), 1)
    assert got[0].data["event_id"] == b.id and got[0].id
    await log.close()
    await bus.close()
