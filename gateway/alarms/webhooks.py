"""Outbound webhooks: each event on the bus, POSTed and signed to the configured URLs.

The body is the bus message as JSON (the same object the SSE stream sends, ``id`` being the
message id); the headers carry ``X-Sharpeyes-Timestamp`` and ``X-Sharpeyes-Signature``,
made exactly as boxes sign their alarms (:mod:`adapters.alarms.signature`) but with the
webhook's own secret, plus ``X-Sharpeyes-Event`` (the type) and ``X-Sharpeyes-Test: 1`` on
drills. A receiver answers 2xx; anything else, or no answer within ``webhook_timeout``, is
retried with exponential back-off up to ``webhook_attempts`` times, then dropped with an
error in the log. 4xx other than 408 and 429 are not retried: the receiver refused the
event and will again.

Each URL has its own bounded queue and sender, so a dead receiver neither delays the
others nor makes the gateway grow: past ``webhook_queue`` events the oldest is dropped.
Webhooks are a push for platforms that want one; the durable feeds are the SSE stream
(resumable) and the Redis Stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp

from adapters.alarms.signature import sign
from gateway.bus import Bus, Event
from gateway.redact import redact
from gateway.settings import AlarmSettings, WebhookSettings

log = logging.getLogger(__name__)

_PERMANENT = frozenset(range(400, 500)) - {408, 429}


class Webhook:
    """One receiving URL: a bounded queue and the task that empties it."""

    def __init__(
        self, settings: WebhookSettings, alarms: AlarmSettings, session: aiohttp.ClientSession
    ) -> None:
        self.url = str(settings.url)
        self.types = frozenset(settings.types)
        self._secret = settings.secret.get_secret_value()
        redact.add(self._secret)
        self._alarms = alarms
        self._session = session
        self._queue: asyncio.Queue[Event] = asyncio.Queue(alarms.webhook_queue)
        self.delivered = 0
        self.dropped = 0
        self._task = asyncio.get_running_loop().create_task(self._send_all(), name="webhook")

    def offer(self, event: Event) -> None:
        if self.types and event.type not in self.types:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            log.error("webhook %s: queue full, oldest event dropped", self.url)
        self._queue.put_nowait(event)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _send_all(self) -> None:
        while True:
            event = await self._queue.get()
            if await self._deliver(event):
                self.delivered += 1
            else:
                self.dropped += 1

    async def _deliver(self, event: Event) -> bool:
        s = self._alarms
        body = event.to_json().encode()
        delay = s.webhook_backoff_initial
        for attempt in range(1, s.webhook_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                "X-Sharpeyes-Event": event.type,
                "X-Sharpeyes-Delivery": event.id,
                **sign(self._secret, body),  # signed per attempt: the timestamp stays fresh
            }
            if event.data.get("test"):
                headers["X-Sharpeyes-Test"] = "1"
            try:
                async with self._session.post(
                    self.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(s.webhook_timeout),
                ) as response:
                    if response.status < 300:
                        return True
                    problem = f"HTTP {response.status}"
                    if response.status in _PERMANENT:
                        log.error("webhook %s refused event %s: %s", self.url, event.id, problem)
                        return False
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = repr(exc)
            if attempt < s.webhook_attempts:
                log.warning(
                    "webhook %s: event %s attempt %d failed (%s); retry in %g s",
                    self.url,
                    event.id,
                    attempt,
                    problem,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.webhook_backoff_max)
        log.error("webhook %s: event %s dropped after %d attempts", self.url, event.id, attempt)
        return False


class Webhooks:
    """Follows the bus and hands each event to every configured webhook."""

    def __init__(self, settings: AlarmSettings, bus: Bus) -> None:
        self.settings = settings
        self._bus = bus
        # Events from the moment the gateway starts, including those the event log
        # publishes at start (left unpublished by a crash), even before start() runs.
        # ``after`` is exclusive: one millisecond back keeps a message of this very one.
        self._since = f"{int(time.time() * 1000) - 1}-0"
        self.hooks: list[Webhook] = []
        self._session: aiohttp.ClientSession | None = None
        self._follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.settings.webhooks:
            return
        self._session = aiohttp.ClientSession()
        self.hooks = [Webhook(w, self.settings, self._session) for w in self.settings.webhooks]
        events = self._bus.subscribe(after=self._since)
        self._follower = asyncio.get_running_loop().create_task(self._follow(events))

    async def _follow(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            for hook in self.hooks:
                hook.offer(event)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        for hook in self.hooks:
            await hook.close()
        if self._session is not None:
            await self._session.close()
