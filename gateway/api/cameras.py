"""/api/v1/cameras: the catalog with live status, and snapshots."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from gateway.api.deps import CameraId, GatewayDep
from gateway.api.schemas import CameraIn, CameraOut, CameraPage, CameraPatch, StatusOut
from gateway.app import Gateway
from gateway.audit import Action
from gateway.auth.rules import CurrentPrincipal, require_scope
from gateway.catalog.codes import parse_region_code
from gateway.catalog.models import Camera, CameraClass, Sector
from gateway.hub.hub import MAIN
from gateway.hub.status import State

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])

StreamChoice = Annotated[Literal["main", "sub"], Query(description="main or sub stream")]


def camera_out(gateway: Gateway, camera: Camera) -> CameraOut:
    stream = gateway.hub.find(camera.id, MAIN)
    status_out = StatusOut.of(
        stream.status if stream else None,
        active=bool(stream and stream.running),
        consumers=stream.subscriber_count if stream else 0,
    )
    return CameraOut.of(camera, status_out)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=CameraOut, response_model_by_alias=True
)
async def create_camera(
    body: CameraIn, gateway: GatewayDep, principal: CurrentPrincipal
) -> CameraOut:
    camera = body.to_camera()
    require_scope(principal, camera)
    created = await gateway.create_camera(camera)
    await gateway.audit.record(principal, Action.CAMERA_CREATE, camera=created.id)
    return camera_out(gateway, created)


@router.get("", response_model=CameraPage, response_model_by_alias=True)
async def list_cameras(
    gateway: GatewayDep,
    principal: CurrentPrincipal,
    camera_class: Annotated[CameraClass | None, Query(alias="class")] = None,
    region: Annotated[str | None, Query(description="region code: its whole subtree")] = None,
    sector: Sector | None = None,
    state: Annotated[State | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CameraPage:
    if region is not None:
        parse_region_code(region, field="region")
    ids = gateway.ids_in_state(state) if state is not None else None
    cameras, total = await gateway.store.list_cameras(
        camera_class=camera_class,
        region=region,
        sector=sector,
        ids=ids,
        within_regions=principal.scope.regions,
        within_classes=principal.scope.classes,
        limit=limit,
        offset=offset,
    )
    return CameraPage(
        items=[camera_out(gateway, c) for c in cameras], total=total, limit=limit, offset=offset
    )


@router.get("/{camera_id}", response_model=CameraOut, response_model_by_alias=True)
async def get_camera(camera_id: CameraId, gateway: GatewayDep) -> CameraOut:
    return camera_out(gateway, await gateway.store.get_camera(camera_id))


@router.patch("/{camera_id}", response_model=CameraOut, response_model_by_alias=True)
async def update_camera(
    camera_id: CameraId, body: CameraPatch, gateway: GatewayDep, principal: CurrentPrincipal
) -> CameraOut:
    changes = body.changes()
    require_scope(principal, replace(await gateway.store.get_camera(camera_id), **changes))
    camera = await gateway.update_camera(camera_id, changes)
    # Field names only: values may hold a password.
    await gateway.audit.record(
        principal, Action.CAMERA_UPDATE, camera=camera_id, detail={"changed": sorted(changes)}
    )
    return camera_out(gateway, camera)


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_camera(
    camera_id: CameraId, gateway: GatewayDep, principal: CurrentPrincipal
) -> Response:
    # Recorded first: once deleted, the camera's region is no longer known to the entry.
    await gateway.audit.record(principal, Action.CAMERA_DELETE, camera=camera_id)
    await gateway.delete_camera(camera_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{camera_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG of the latest keyframe"}},
)
async def camera_snapshot(
    camera_id: CameraId, gateway: GatewayDep, stream: StreamChoice = "main"
) -> Response:
    camera = await gateway.store.get_camera(camera_id)  # 404 for unknown cameras
    # An ONVIF camera's own JPEG when the hub is not pulling it (see OnvifManager.snapshot).
    jpeg = await gateway.onvif.snapshot(camera, gateway.stream(camera_id, stream))
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
