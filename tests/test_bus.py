"""The event bus, in memory and on a real Redis (a private redis-server on a free port)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.bus import Bus, Event, MemoryBus, RedisBus, id_key
from tests.peers.ports import free_port


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/setup test installs it)")
    folder: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            str(folder / "redis.pid"),
            "--logfile",
            str(folder / "redis.log"),
            "--dir",
            str(folder),
        ],
        check=True,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        pid = (folder / "redis.pid").read_text().strip()
        subprocess.run(["kill", pid], check=False)


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        b: Bus = MemoryBus(retain=100)
    else:
        b = RedisBus(request.getfixturevalue("redis_url"), stream=f"test:{request.node.name}")
    yield b
    await b.close()


async def take(it: AsyncIterator[Event], n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(it), 5) for _ in range(n)]


async def test_publish_subscribe_and_filter(bus: Bus) -> None:
    everything = bus.subscribe()
    motion_only = bus.subscribe(types={"motion"})
    first = asyncio.ensure_future(take(everything, 2))
    second = asyncio.ensure_future(take(motion_only, 1))
    await asyncio.sleep(0.2)  # both subscribed (Redis: XREAD from "$")
    a = await bus.publish(Event(type="black", source="analytics", camera="c1", score=0.9))
    b = await bus.publish(Event(type="motion", source="onvif", camera="c1", data={"zone": 1}))
    got = await first
    assert [e.id for e in got] == [a.id, b.id] and id_key(a.id) < id_key(b.id)
    assert got[0].score == 0.9 and got[1].data == {"zone": 1}
    assert [e.id for e in await second] == [b.id]


async def test_resume_after_id_misses_nothing(bus: Bus) -> None:
    ids = [
        (await bus.publish(Event(type="test", source="alarm", data={"n": i}))).id for i in range(5)
    ]
    resumed = await take(bus.subscribe(after=ids[1]), 3)
    assert [e.data["n"] for e in resumed] == [2, 3, 4]


async def test_memory_bus_slow_subscriber_does_not_block() -> None:
    bus = MemoryBus(queue_size=3)
    stuck = bus.subscribe()
    waiter = asyncio.ensure_future(anext(stuck))
    await asyncio.sleep(0)
    for i in range(10):
        await bus.publish(Event(type="t", source="s", data={"n": i}))
    # The queue kept the newest three; publishing never waited for the reader.
    assert (await waiter).data["n"] == 7
    assert [e.data["n"] for e in await take(stuck, 2)] == [8, 9]


async def test_redis_subscriber_starts_after_the_newest_entry(redis_url: str) -> None:
    """A new subscriber's cursor is pinned to the stream's newest id when it starts (not
    "$" re-read at every XREAD, which loses events landing between two reads): it gets
    nothing older and the very next event, on an empty and on a busy stream alike."""
    bus = RedisBus(redis_url, stream="test:pinned-cursor", block_ms=50)
    try:
        for backlog in (0, 3):
            for i in range(backlog):
                await bus.publish(Event(type="old", source="s", data={"i": i}))
            subscription = bus.subscribe()
            first = asyncio.ensure_future(anext(subscription))
            await asyncio.sleep(0.3)  # several empty reads go by
            sent = await bus.publish(Event(type="new", source="s"))
            got = await asyncio.wait_for(first, 5)
            assert (got.id, got.type) == (sent.id, "new")
            await subscription.aclose()
    finally:
        await bus.close()
