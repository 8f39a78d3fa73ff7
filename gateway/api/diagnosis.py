"""Video-quality diagnosis: each camera's faults now, its scene reference, and 完好率.

- ``GET /api/v1/cameras/{id}/diagnosis`` — the latest state of every event type: active
  (with the event that is going on) or not (with the last one, if any).
- ``POST /api/v1/cameras/{id}/diagnosis/reference`` — forget the scene reference (after a
  deliberate re-aim); the next good stretch of picture becomes the new one. 202: it is
  relearned from pictures still to come.
- ``GET /api/v1/cameras/{id}/diagnosis/reference.jpg`` — the reference picture.
- ``GET /api/v1/diagnosis`` — every region's online rate and 完好率 (online cameras without
  a picture fault), and the cameras with a fault now.

The diagnosis is read from the event log (:mod:`analytics.report`), so it answers even
while analytics is disabled, from what was found before.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from analytics.report import TypeState
from gateway.api.deps import CameraId, GatewayDep
from gateway.auth.rules import CurrentPrincipal
from gateway.errors import NotFound

router = APIRouter(tags=["diagnosis"])
CAMERA = "/api/v1/cameras/{camera_id}/diagnosis"


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class TypeStateOut(BaseModel):
    type: str
    fault: bool = Field(description="false for motion, which is no fault")
    active: bool
    since: datetime | None = Field(description="start of the event going on")
    event_id: str | None = Field(description="the latest event of this type")
    last_start: datetime | None
    last_end: datetime | None
    score: float | None = Field(description="the latest event's peak score")

    @classmethod
    def of(cls, state: TypeState) -> TypeStateOut:
        last = state.last
        return cls(
            type=state.type.value,
            fault=state.type.is_fault,
            active=state.active,
            since=_time(last.start) if state.active and last is not None else None,
            event_id=last.id if last is not None else None,
            last_start=_time(last.start) if last is not None else None,
            last_end=_time(last.end) if last is not None else None,
            score=last.score if last is not None else None,
        )


class ReferenceOut(BaseModel):
    learned_at: datetime
    picture: str = Field(description="URL of the reference picture")


class DiagnosisOut(BaseModel):
    camera: str
    ok: bool = Field(description="no fault active")
    faults: list[str] = Field(description="the faults active now")
    sampled_live: bool = Field(description="analysed from live samples now (else recordings)")
    analysed_at: datetime | None = Field(description="latest picture analysed since start")
    reference: ReferenceOut | None = Field(description="the scene reference, once learned")
    types: list[TypeStateOut]


class RegionQualityOut(BaseModel):
    code: str
    cameras: int
    online: int
    intact: int = Field(description="online cameras with no picture fault")
    online_ratio: float
    intact_ratio: float = Field(description="完好率: intact / online")


class FaultyCameraOut(BaseModel):
    camera: str
    faults: list[str]


class QualityOut(BaseModel):
    regions: list[RegionQualityOut]
    faulty: list[FaultyCameraOut]


class RelearnOut(BaseModel):
    camera: str
    status: str = "relearning"


@router.get(CAMERA, response_model=DiagnosisOut)
async def camera_diagnosis(camera_id: CameraId, gateway: GatewayDep) -> DiagnosisOut:
    await gateway.store.get_camera(camera_id)  # 404 for unknown cameras
    analytics = gateway.analytics
    diagnosis = await analytics.diagnosis(camera_id)
    learned = await asyncio.to_thread(analytics.reference_time, camera_id)
    seen = analytics.seen.get(camera_id)
    return DiagnosisOut(
        camera=camera_id,
        ok=not diagnosis.faults,
        faults=[f.value for f in diagnosis.faults],
        sampled_live=camera_id in analytics.sampler.cameras,
        analysed_at=_time(seen[0]) if seen else None,
        reference=(
            ReferenceOut(
                learned_at=datetime.fromtimestamp(learned, UTC),
                picture=f"/api/v1/cameras/{camera_id}/diagnosis/reference.jpg",
            )
            if learned is not None
            else None
        ),
        types=[TypeStateOut.of(state) for state in diagnosis.states],
    )


@router.post(CAMERA + "/reference", status_code=status.HTTP_202_ACCEPTED, response_model=RelearnOut)
async def relearn_reference(camera_id: CameraId, gateway: GatewayDep) -> RelearnOut:
    await gateway.store.get_camera(camera_id)
    await gateway.analytics.relearn(camera_id)
    return RelearnOut(camera=camera_id)


@router.get(
    CAMERA + "/reference.jpg",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the reference picture"}},
)
async def reference_picture(camera_id: CameraId, gateway: GatewayDep) -> FileResponse:
    await gateway.store.get_camera(camera_id)
    path = gateway.analytics.references.picture_path(camera_id)
    if not await asyncio.to_thread(path.is_file):
        raise NotFound(f"camera {camera_id} has no scene reference yet")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})


@router.get("/api/v1/diagnosis", response_model=QualityOut)
async def quality(gateway: GatewayDep, principal: CurrentPrincipal) -> QualityOut:
    cameras = [c for c in await gateway.store.all_cameras() if principal.scope.allows(c)]
    regions, faults = await gateway.analytics.quality(cameras)
    return QualityOut(
        regions=[
            RegionQualityOut(
                code=r.code,
                cameras=r.cameras,
                online=r.online,
                intact=r.intact,
                online_ratio=round(r.online_ratio, 4),
                intact_ratio=round(r.intact_ratio, 4),
            )
            for r in regions
        ],
        faulty=[
            FaultyCameraOut(camera=camera, faults=sorted(f.value for f in kinds))
            for camera, kinds in sorted(faults.items())
        ],
    )
