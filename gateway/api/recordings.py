"""Recorded footage: the timeline of a camera, playback (HLS), export, evidence holds.

Times in queries are ISO 8601 with an explicit offset (``2025-01-01T12:00:00Z``,
``2025-01-01T20:00:00+08:00``) or seconds since the epoch. A time without an offset is
refused: the same digits mean different moments in UTC and in Beijing time, and footage is
evidence.

- ``GET /api/v1/cameras/{id}/recordings?start=&end=`` — segments, gaps, holds in the range
- ``GET /api/v1/cameras/{id}/recordings.m3u8?start=&end=`` — HLS VOD playlist of the range
  (``<video src>`` in Safari, hls.js elsewhere); it points at
- ``GET /api/v1/cameras/{id}/recordings/{segment id}.mp4`` — one segment file, with Range
- ``GET /api/v1/cameras/{id}/export.mp4?start=&end=`` — one MP4 cut at the requested times
- ``POST|GET /api/v1/cameras/{id}/holds``, ``DELETE /api/v1/cameras/{id}/holds/{hold id}``
- ``GET /api/v1/recorder`` — disk and per-camera recording status
- the recorder's Prometheus samples are part of the gateway's ``GET /metrics``
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from gateway.api.deps import CameraId, GatewayDep
from gateway.app import Gateway
from gateway.errors import InvalidInput, NotFound
from recorder import playback
from recorder.index import Gap, Hold, Segment
from recorder.layout import iso, parse_time, stamp
from recorder.retention import DiskStatus
from recorder.service import CameraStatus

router = APIRouter(tags=["recordings"])
CAMERA = "/api/v1/cameras/{camera_id}"
DEFAULT_SPAN = 24 * 3600.0


StartQ = Annotated[str | None, Query(description="ISO 8601 with offset, or epoch seconds")]
EndQ = Annotated[str | None, Query(description="ISO 8601 with offset, or epoch seconds")]


def _range(start: str | None, end: str | None, *, required: bool) -> tuple[float, float]:
    if required and (start is None or end is None):
        raise InvalidInput("start and end are required", field="start" if start is None else "end")
    until = parse_time(end, "end") if end is not None else time.time()
    since = parse_time(start, "start") if start is not None else until - DEFAULT_SPAN
    if not until > since:
        raise InvalidInput("end must be after start", field="end")
    return since, until


async def _known_camera(gateway: Gateway, camera_id: str) -> None:
    """404 unless the camera is in the catalog or has footage (removed cameras keep theirs)."""
    try:
        await gateway.store.get_camera(camera_id)
    except NotFound:
        if not await gateway.recorder.index.knows(camera_id):
            raise


def _time(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


class SegmentOut(BaseModel):
    id: int
    start: datetime
    end: datetime
    duration: float = Field(description="media seconds")
    bytes: int
    packets: int
    video_codec: str
    width: int
    height: int
    audio_codec: str | None
    keyframes: int
    repaired: bool = Field(description="recovered after a crash or a full disk")
    url: str

    @classmethod
    def of(cls, segment: Segment) -> SegmentOut:
        return cls(
            id=segment.id,
            start=datetime.fromtimestamp(segment.start, UTC),
            end=datetime.fromtimestamp(segment.end, UTC),
            duration=segment.duration,
            bytes=segment.bytes,
            packets=segment.packets,
            video_codec=segment.video_codec,
            width=segment.width,
            height=segment.height,
            audio_codec=segment.audio_codec,
            keyframes=len(segment.keyframes),
            repaired=segment.repaired,
            url=f"/api/v1/cameras/{segment.camera_id}/recordings/{segment.id}.mp4",
        )


class GapOut(BaseModel):
    start: datetime
    end: datetime | None = Field(description="null: still open")
    reason: str

    @classmethod
    def of(cls, gap: Gap) -> GapOut:
        return cls(start=_time(gap.start), end=_time(gap.end), reason=gap.reason.value)


class HoldIn(BaseModel):
    start: str
    end: str
    reason: str = Field(min_length=1, max_length=500, description="case number or request")


class HoldOut(BaseModel):
    id: int
    camera_id: str
    start: datetime
    end: datetime
    reason: str
    created_at: datetime
    released_at: datetime | None

    @classmethod
    def of(cls, hold: Hold) -> HoldOut:
        return cls(
            id=hold.id,
            camera_id=hold.camera_id,
            start=datetime.fromtimestamp(hold.start, UTC),
            end=datetime.fromtimestamp(hold.end, UTC),
            reason=hold.reason,
            created_at=datetime.fromtimestamp(hold.created_at, UTC),
            released_at=_time(hold.released_at),
        )


class RecordingStatusOut(BaseModel):
    camera_id: str
    state: str = Field(description="recording | waiting | disk_full | error")
    segment_start: datetime | None = Field(description="start of the segment being written")
    segments: int
    received: int = Field(description="packets the hub delivered to the recorder")
    packets: int = Field(description="packets written")
    bytes: int
    skipped: int = Field(description="not written: before a keyframe, disk full, unsupported audio")
    dropped: int = Field(description="packets the hub discarded: the recorder fell behind")
    errors: int
    last_error: str
    audio_note: str

    @classmethod
    def of(cls, s: CameraStatus) -> RecordingStatusOut:
        return cls(
            camera_id=s.camera_id,
            state=s.state,
            segment_start=_time(s.segment_start),
            segments=s.segments,
            received=s.received,
            packets=s.packets,
            bytes=s.bytes,
            skipped=s.skipped,
            dropped=s.dropped,
            errors=s.errors,
            last_error=s.last_error,
            audio_note=s.audio_note,
        )


class RecordingsOut(BaseModel):
    camera_id: str
    start: datetime
    end: datetime
    segments: list[SegmentOut]
    gaps: list[GapOut]
    holds: list[HoldOut]
    recording: RecordingStatusOut | None = Field(description="null: not being recorded")
    playlist: str = Field(description="HLS VOD playlist of this range")


class DiskOut(BaseModel):
    root: str
    state: str = Field(description="ok | low (evicting) | full (recording interrupted)")
    total: int
    free: int
    low_water: int
    expired_segments: int
    evicted_segments: int
    evicted_bytes: int
    last_run: datetime | None
    last_error: str

    @classmethod
    def of(cls, root: str, d: DiskStatus) -> DiskOut:
        return cls(
            root=root,
            state=d.state.value,
            total=d.total,
            free=d.free,
            low_water=d.low_water,
            expired_segments=d.expired_segments,
            evicted_segments=d.evicted_segments,
            evicted_bytes=d.evicted_bytes,
            last_run=_time(d.last_run or None),
            last_error=d.last_error,
        )


class RecorderOut(BaseModel):
    disk: DiskOut
    cameras: list[RecordingStatusOut]


@router.get(CAMERA + "/recordings", response_model=RecordingsOut)
async def recordings(
    camera_id: CameraId, gateway: GatewayDep, start: StartQ = None, end: EndQ = None
) -> RecordingsOut:
    await _known_camera(gateway, camera_id)
    since, until = _range(start, end, required=False)
    found = await gateway.recorder.timeline(camera_id, since, until)
    return RecordingsOut(
        camera_id=camera_id,
        start=datetime.fromtimestamp(since, UTC),
        end=datetime.fromtimestamp(until, UTC),
        segments=[SegmentOut.of(s) for s in found.segments],
        gaps=[GapOut.of(g) for g in found.gaps],
        holds=[HoldOut.of(h) for h in found.holds],
        recording=RecordingStatusOut.of(found.recording) if found.recording else None,
        playlist=f"{CAMERA.format(camera_id=camera_id)}/recordings.m3u8?start={iso(since)}"
        f"&end={iso(until)}",
    )


@router.get(
    CAMERA + "/recordings.m3u8",
    response_class=Response,
    responses={200: {"content": {"application/vnd.apple.mpegurl": {}}}},
)
async def hls_playlist(
    camera_id: CameraId, gateway: GatewayDep, start: StartQ = None, end: EndQ = None
) -> Response:
    await _known_camera(gateway, camera_id)
    since, until = _range(start, end, required=False)
    segments = (await gateway.recorder.timeline(camera_id, since, until)).segments
    if not segments:
        raise NotFound(f"camera {camera_id} has no recordings from {iso(since)} to {iso(until)}")
    # Relative URIs: they resolve against this playlist's URL, whatever proxy is in front.
    text = playback.playlist(segments, lambda s: f"recordings/{s.id}.mp4")
    return Response(
        text, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-store"}
    )


@router.get(
    CAMERA + "/recordings/{segment_id}.mp4",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "a byte range"}},
)
async def segment_file(camera_id: CameraId, segment_id: int, gateway: GatewayDep) -> FileResponse:
    segment = await gateway.recorder.index.segment(segment_id)
    if segment.camera_id != camera_id:
        raise NotFound(f"camera {camera_id} has no recorded segment {segment_id}")
    return FileResponse(gateway.recorder.path_of(segment), media_type="video/mp4")


@router.get(
    CAMERA + "/export.mp4",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "a byte range"}},
)
async def export_mp4(
    camera_id: CameraId, gateway: GatewayDep, start: StartQ = None, end: EndQ = None
) -> FileResponse:
    await _known_camera(gateway, camera_id)
    since, until = _range(start, end, required=True)
    built = await gateway.recorder.export(camera_id, since, until)
    plan = built.plan
    return FileResponse(
        built.path,
        media_type="video/mp4",
        filename=f"{camera_id}_{stamp(plan.start)}_{stamp(plan.end)}.mp4",
        headers={
            # What the file really covers: the request clipped to what was recorded.
            "X-Recording-Start": iso(plan.start),
            "X-Recording-End": iso(plan.end),
            "X-Recording-Keyframe": iso(plan.keyframe),
            "Cache-Control": "no-store",
        },
    )


@router.post(CAMERA + "/holds", status_code=status.HTTP_201_CREATED, response_model=HoldOut)
async def create_hold(camera_id: CameraId, body: HoldIn, gateway: GatewayDep) -> HoldOut:
    await _known_camera(gateway, camera_id)
    since, until = _range(body.start, body.end, required=True)
    return HoldOut.of(await gateway.recorder.add_hold(camera_id, since, until, body.reason))


@router.get(CAMERA + "/holds", response_model=list[HoldOut])
async def list_holds(
    camera_id: CameraId,
    gateway: GatewayDep,
    released: Annotated[bool, Query(description="include released holds")] = False,
) -> list[HoldOut]:
    await _known_camera(gateway, camera_id)
    holds = await gateway.recorder.holds(camera_id, include_released=released)
    return [HoldOut.of(h) for h in holds]


@router.delete(CAMERA + "/holds/{hold_id}", response_model=HoldOut)
async def release_hold(camera_id: CameraId, hold_id: int, gateway: GatewayDep) -> HoldOut:
    return HoldOut.of(await gateway.recorder.release_hold(camera_id, hold_id))


@router.get("/api/v1/recorder", response_model=RecorderOut)
async def recorder_status(gateway: GatewayDep) -> RecorderOut:
    recorder = gateway.recorder
    disk = await recorder.disk()
    return RecorderOut(
        disk=DiskOut.of(str(recorder.root), disk),
        cameras=[RecordingStatusOut.of(s) for s in recorder.statuses()],
    )
