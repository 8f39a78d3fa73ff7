"""Outbound webhooks against a real HTTP receiver on loopback: signed, retried, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from adapters.alarms.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from gateway.alarms.webhooks import Webhooks
from gateway.bus import Event, MemoryBus
from gateway.settings import AlarmSettings, WebhookSettings
from tests.peers.ports import free_port

SECRET = "webhook-secret-0123456789"


class Receiver:
    """Answers each POST with the next status of ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int], delay: float = 0.0) -> None:
        self.statuses = statuses
        self.delay = delay
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body))
        await asyncio.sleep(self.delay)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Receiver], Any]]:
    runners: list[web.AppRunner] = []

    async def start(receiver: Receiver) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        receiver.url = f"http://127.0.0.1:{port}/hook"
        return receiver

    yield start
    for runner in runners:
        await runner.cleanup()


def settings(url: str, **overrides: Any) -> AlarmSettings:
    hook = WebhookSettings(url=url, secret=SECRET)
    values = {"webhooks": [hook], "webhook_backoff_initial": 0.05, "webhook_timeout": 2.0}
    return AlarmSettings(**{**values, **overrides})


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    # Polling: the conditions are counters inside the dispatcher, which signals nothing.
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_delivers_signed_events_of_the_configured_types(serve: Any) -> None:
    receiver = await serve(Receiver([]))
    bus = MemoryBus()
    hooks = Webhooks(settings(receiver.url), bus)
    await hooks.start()
    try:
        await bus.publish(Event(type="motion", source="analytics", camera="c"))  # not listed
        sent = await bus.publish(
            Event(type="test", source="alarm", device="d", data={"test": True, "event_id": "1-0"})
        )
        await until(lambda: len(receiver.received) == 1)
    finally:
        await hooks.close()
    headers, body = receiver.received[0]
    verify(SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], window=60)
    assert Event.from_json(body) == sent
    assert headers["X-Sharpeyes-Event"] == "test" and headers["X-Sharpeyes-Test"] == "1"
    assert headers["X-Sharpeyes-Delivery"] == sent.id
    assert hooks.hooks[0].delivered == 1


async def test_retries_failures_with_backoff_then_delivers(serve: Any) -> None:
    receiver = await serve(Receiver([500, 503]))
    bus = MemoryBus()
    hooks = Webhooks(settings(receiver.url), bus)
    await hooks.start()
    try:
        await bus.publish(Event(type="emergency", source="alarm", data={"test": False}))
        await until(lambda: hooks.hooks[0].delivered == 1)
    finally:
        await hooks.close()
    assert len(receiver.received) == 3 and "X-Sharpeyes-Test" not in receiver.received[0][0]
    # Each attempt carries its own timestamp and signature.
    assert all(SIGNATURE_HEADER in h for h, _ in receiver.received)


async def test_refusal_is_not_retried_and_attempts_are_bounded(serve: Any) -> None:
    refusing = await serve(Receiver([400]))
    failing = await serve(Receiver([500] * 10))
    bus = MemoryBus()
    hooks = Webhooks(settings(refusing.url), bus)
    other = Webhooks(settings(failing.url, webhook_attempts=3), bus)
    await hooks.start()
    await other.start()
    try:
        await bus.publish(Event(type="emergency", source="alarm"))
        await until(lambda: hooks.hooks[0].dropped == 1 and other.hooks[0].dropped == 1)
    finally:
        await hooks.close()
        await other.close()
    assert len(refusing.received) == 1 and len(failing.received) == 3


async def test_a_stuck_receiver_keeps_only_the_newest(serve: Any) -> None:
    receiver = await serve(Receiver([], delay=1.0))
    bus = MemoryBus()
    hooks = Webhooks(settings(receiver.url, webhook_queue=2), bus)
    await hooks.start()
    try:
        for n in range(6):
            await bus.publish(Event(type="emergency", source="alarm", data={"n": n}))
        hook = hooks.hooks[0]
        await until(lambda: hook.delivered + hook.dropped == 6)
    finally:
        await hooks.close()
    # Whether the first went out before the rest arrived depends on scheduling; the queue
    # never held more than two, and the newest made it.
    delivered = [Event.from_json(body).data["n"] for _, body in receiver.received]
    assert delivered[-2:] == [4, 5] and len(delivered) <= 3 and hook.dropped >= 3


async def test_no_webhooks_configured_starts_nothing() -> None:
    hooks = Webhooks(AlarmSettings(), MemoryBus())
    await hooks.start()
    assert hooks.hooks == []
    await hooks.close()
