"""/api/v1/events: the event log (analytics faults and motion, ONVIF alarms, ...).

- ``GET /api/v1/events?camera=&type=&source=&since=&until=&ongoing=&limit=&offset=`` —
  newest start first. ``since``/``until`` are ISO 8601 with a UTC offset or epoch seconds;
  an event is listed when it overlaps that range, so a fault that began before ``since``
  and still goes on is part of it. ``type`` may repeat or list types with commas.
- ``GET /api/v1/events/{id}`` — one event.
- ``GET /api/v1/events/{id}/thumbnail.jpg`` — its evidence picture, where it has one.

An event's ``id`` is the one in every bus message about it (``data.event_id``); a live
fault is one event whose ``end`` is null until it ends (see :mod:`gateway.eventlog`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from gateway.api.deps import GatewayDep
from gateway.auth.principals import Principal
from gateway.auth.rules import CurrentPrincipal, visible_cameras
from gateway.catalog.codes import parse_device_code
from gateway.errors import InvalidInput, NotFound
from gateway.eventlog import Record
from recorder.layout import parse_time

router = APIRouter(prefix="/api/v1/events", tags=["events"])

TimeQ = Annotated[str | None, Query(description="ISO 8601 with offset, or epoch seconds")]


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class EventOut(BaseModel):
    id: str
    type: str = Field(description="black, frozen, blur, ..., motion, alarm_input, ...")
    source: str = Field(description="analytics, onvif, alarm, ...")
    camera: str | None
    device: str | None
    start: datetime
    end: datetime | None = Field(description="null: still going on")
    score: float | None = Field(description="peak score in [0, 1] (analytics)")
    data: dict[str, Any]
    thumbnail: str | None = Field(description="URL of the evidence JPEG")
    published: bool = Field(description="its latest state is on the event bus")

    @classmethod
    def of(cls, record: Record) -> EventOut:
        return cls(
            id=record.id,
            type=record.type,
            source=record.source,
            camera=record.camera,
            device=record.device,
            start=datetime.fromtimestamp(record.start, UTC),
            end=_time(record.end),
            score=record.score,
            data=dict(record.data),
            thumbnail=record.thumbnail_url,
            published=record.published,
        )


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int


@router.get("", response_model=EventPage)
async def list_events(
    gateway: GatewayDep,
    principal: CurrentPrincipal,
    camera: Annotated[str | None, Query(description="20-digit camera id")] = None,
    event_type: Annotated[
        list[str] | None, Query(alias="type", description="repeat, or separate with commas")
    ] = None,
    source: str | None = None,
    since: TimeQ = None,
    until: TimeQ = None,
    ongoing: Annotated[bool, Query(description="only events still going on")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EventPage:
    if camera is not None:
        parse_device_code(camera, field="camera")
    types = {t.strip() for value in event_type or () for t in value.split(",") if t.strip()}
    start = parse_time(since, "since") if since is not None else None
    end = parse_time(until, "until") if until is not None else None
    if start is not None and end is not None and end < start:
        raise InvalidInput("until must not be before since", field="until")
    page = await gateway.events.query(
        camera=camera,
        types=types or None,
        source=source,
        since=start,
        until=end,
        open_only=ongoing,
        limit=limit,
        offset=offset,
        cameras=await visible_cameras(gateway, principal),
        regions=principal.scope.regions or (),
    )
    return EventPage(
        items=[EventOut.of(r) for r in page.items], total=page.total, limit=limit, offset=offset
    )


async def _visible_event(gateway: GatewayDep, principal: Principal, event_id: str) -> Record:
    """The event, if its camera is in the principal's scope; 404 as for a missing one."""
    record = await gateway.events.get(event_id)
    visible = await visible_cameras(gateway, principal)
    if visible is None:
        return record
    if record.camera is not None:
        allowed = record.camera in visible
    else:  # a device that is not a camera (an alarm box): judged by its region
        region = record.data.get("region")
        allowed = (
            isinstance(region, str)
            and bool(principal.scope.regions)
            and (principal.scope.allows_region(region))
        )
    if not allowed:
        raise NotFound(f"event {event_id} does not exist")
    return record


@router.get("/{event_id}", response_model=EventOut)
async def get_event(event_id: str, gateway: GatewayDep, principal: CurrentPrincipal) -> EventOut:
    return EventOut.of(await _visible_event(gateway, principal, event_id))


@router.get(
    "/{event_id}/thumbnail.jpg",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the evidence picture"}},
)
async def event_thumbnail(
    event_id: str, gateway: GatewayDep, principal: CurrentPrincipal
) -> FileResponse:
    await _visible_event(gateway, principal, event_id)
    path = await gateway.events.thumbnail(event_id)
    if path is None:
        raise NotFound(f"event {event_id} has no thumbnail")
    # Revalidated, not cached: the picture is replaced when a later one scores higher.
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})
