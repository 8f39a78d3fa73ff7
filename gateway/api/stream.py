"""``GET /api/v1/events/stream``: every event as Server-Sent Events, resumable.

Wire format (one message per bus message)::

    id: 1732190000123-0
    data: {"type":"emergency","source":"alarm","device":"…","data":{"event_id":…,"version":1,…},…}

``id`` is the bus message id; a client that reconnects sends the last one it saw as
``Last-Event-ID`` (browsers' ``EventSource`` do so by themselves; others may pass
``?after=``) and misses nothing, across gateway restarts too (see
:mod:`gateway.alarms.stream`). Messages replayed from the event log may come without an
``id`` line. ``data`` is one line of JSON; messages have no ``event:`` name, so
``EventSource.onmessage`` receives them all. A comment line every ``stream_keepalive``
seconds keeps proxies from closing an idle stream. ``?type=`` (repeated or comma-separated)
selects event types. A caller sees the events of cameras and devices in its scope.

This route lives here rather than in ``gateway/api/events.py`` so the two can change
independently; its router is included before that one, whose ``/{event_id}`` would
otherwise take ``stream`` for an id.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from gateway.api.deps import GatewayDep
from gateway.app import Gateway
from gateway.auth.principals import Principal
from gateway.auth.rules import CurrentPrincipal
from gateway.bus import Event
from gateway.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"])

_ID = re.compile(r"\d{1,16}-\d{1,10}")
QUEUE = 1000  # messages waiting for a slow client; past that the bus drops its oldest
RETRY_MS = 2000  # how soon EventSource reconnects after the stream breaks


class _Scope:
    """Whether a caller may see an event: cameras by region and class (looked up once per
    stream), other events by the region they carry (alarm boxes)."""

    def __init__(self, gateway: Gateway, principal: Principal) -> None:
        self._gateway = gateway
        self._scope = principal.scope
        self._cameras: dict[str, bool] = {}

    async def allows(self, event: Event) -> bool:
        scope = self._scope
        if scope.unrestricted:
            return True
        if event.camera is not None:
            allowed = self._cameras.get(event.camera)
            if allowed is None:
                try:
                    camera = await self._gateway.store.get_camera(event.camera)
                    allowed = scope.allows(camera)
                except NotFound:
                    allowed = False
                self._cameras[event.camera] = allowed
            return allowed
        region = event.data.get("region")
        return isinstance(region, str) and scope.allows_region(region)


def _frame(event: Event) -> bytes:
    head = f"id: {event.id}\n" if event.id else ""
    return f"{head}data: {event.to_json()}\n\n".encode()


async def _frames(
    events: AsyncIterator[Event], scope: _Scope, keepalive: float
) -> AsyncIterator[bytes]:
    # The bus is read by a task of its own: waiting on it with a timeout would cancel the
    # subscription, which ends an async generator for good.
    queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE)

    async def pump() -> None:
        try:
            async for event in events:
                await queue.put(event)
        except Exception:  # the bus failed (Redis gone): end the stream, the client resumes
            log.exception("events stream: the bus failed; closing the stream")
        await queue.put(None)

    reader = asyncio.get_running_loop().create_task(pump(), name="events stream")
    try:
        yield f"retry: {RETRY_MS}\n: stream open\n\n".encode()
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if event is None:
                return
            if await scope.allows(event):
                yield _frame(event)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


@router.get(
    "/api/v1/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def event_stream(
    gateway: GatewayDep,
    principal: CurrentPrincipal,
    event_type: Annotated[
        list[str] | None, Query(alias="type", description="repeat, or separate with commas")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[str | None, Query(description="as Last-Event-ID, for plain clients")] = None,
) -> StreamingResponse:
    resume = last_event_id or after
    if resume is not None and not _ID.fullmatch(resume.strip()):
        raise InvalidInput("Last-Event-ID must be an event stream id (<ms>-<seq>)", field="after")
    types = {t.strip() for value in event_type or () for t in value.split(",") if t.strip()}
    events = gateway.alarms.stream.follow(
        types=types or None, after=resume.strip() if resume else None
    )
    frames = _frames(events, _Scope(gateway, principal), gateway.settings.alarms.stream_keepalive)
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},  # nginx: don't buffer
    )
