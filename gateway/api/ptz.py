"""/api/v1/cameras/{id}/ptz: pan, tilt, zoom and presets of ONVIF cameras.

A camera without PTZ answers 409 ``ptz_unsupported``; one not onboarded through ONVIF
409 ``not_onvif_camera``. Who may steer which camera is decided by a dependency added to
``router`` (access control by role), so that every route here passes through it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from adapters.onvif.ptz import Position, Preset, Ptz, PtzStatus
from gateway.api.deps import CameraId, GatewayDep

router = APIRouter(prefix="/api/v1/cameras/{camera_id}/ptz", tags=["ptz"])

NO_CONTENT = status.HTTP_204_NO_CONTENT


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VelocityIn(_In):
    pan: float | None = Field(None, ge=-1, le=1, description="-1 left … 1 right")
    tilt: float | None = Field(None, ge=-1, le=1, description="-1 down … 1 up")
    zoom: float | None = Field(None, ge=-1, le=1, description="-1 out … 1 in")
    timeout: float | None = Field(None, gt=0, le=60, description="the device stops by itself")


class PositionIn(_In):
    pan: float | None = Field(None, ge=-1, le=1)
    tilt: float | None = Field(None, ge=-1, le=1)
    zoom: float | None = Field(None, ge=0, le=1)


class TranslationIn(_In):
    pan: float | None = Field(None, ge=-2, le=2)
    tilt: float | None = Field(None, ge=-2, le=2)
    zoom: float | None = Field(None, ge=-1, le=1)


class StopIn(_In):
    pan_tilt: bool = True
    zoom: bool = True


class PresetIn(_In):
    name: str = Field(min_length=1, max_length=64)
    token: str | None = Field(None, max_length=64, description="overwrite this preset")


class PositionOut(BaseModel):
    pan: float | None
    tilt: float | None
    zoom: float | None

    @classmethod
    def of(cls, position: Position) -> PositionOut:
        return cls(pan=position.pan, tilt=position.tilt, zoom=position.zoom)


class PtzStatusOut(BaseModel):
    position: PositionOut
    moving: bool


class PresetOut(BaseModel):
    token: str
    name: str
    position: PositionOut | None

    @classmethod
    def of(cls, preset: Preset) -> PresetOut:
        position = PositionOut.of(preset.position) if preset.position else None
        return cls(token=preset.token, name=preset.name, position=position)


class PresetCreated(BaseModel):
    token: str


PresetToken = Annotated[str, Path(max_length=64)]


@router.get("/status", response_model=PtzStatusOut)
async def ptz_status(camera_id: CameraId, gateway: GatewayDep) -> PtzStatusOut:
    current: PtzStatus = await gateway.onvif.ptz(camera_id, Ptz.status)
    return PtzStatusOut(position=PositionOut.of(current.position), moving=current.moving)


@router.post("/move", status_code=NO_CONTENT)
async def continuous_move(camera_id: CameraId, body: VelocityIn, gateway: GatewayDep) -> None:
    """Move at a velocity until ``stop`` (or ``timeout``)."""
    await gateway.onvif.ptz(
        camera_id, lambda p: p.continuous_move(body.pan, body.tilt, body.zoom, body.timeout)
    )


@router.post("/stop", status_code=NO_CONTENT)
async def stop(camera_id: CameraId, gateway: GatewayDep, body: StopIn | None = None) -> None:
    body = body or StopIn()
    await gateway.onvif.ptz(camera_id, lambda p: p.stop(body.pan_tilt, body.zoom))


@router.post("/absolute", status_code=NO_CONTENT)
async def absolute_move(camera_id: CameraId, body: PositionIn, gateway: GatewayDep) -> None:
    await gateway.onvif.ptz(camera_id, lambda p: p.absolute_move(body.pan, body.tilt, body.zoom))


@router.post("/relative", status_code=NO_CONTENT)
async def relative_move(camera_id: CameraId, body: TranslationIn, gateway: GatewayDep) -> None:
    await gateway.onvif.ptz(camera_id, lambda p: p.relative_move(body.pan, body.tilt, body.zoom))


@router.post("/home", status_code=NO_CONTENT)
async def home(camera_id: CameraId, gateway: GatewayDep) -> None:
    await gateway.onvif.ptz(camera_id, Ptz.home)


@router.get("/presets", response_model=list[PresetOut])
async def presets(camera_id: CameraId, gateway: GatewayDep) -> list[PresetOut]:
    return [PresetOut.of(p) for p in await gateway.onvif.ptz(camera_id, Ptz.presets)]


@router.post("/presets", response_model=PresetCreated, status_code=status.HTTP_201_CREATED)
async def set_preset(camera_id: CameraId, body: PresetIn, gateway: GatewayDep) -> PresetCreated:
    """Store the current position under ``name``."""
    token = await gateway.onvif.ptz(camera_id, lambda p: p.set_preset(body.name, body.token))
    return PresetCreated(token=token)


@router.post("/presets/{token}/goto", status_code=NO_CONTENT)
async def goto_preset(camera_id: CameraId, token: PresetToken, gateway: GatewayDep) -> None:
    await gateway.onvif.ptz(camera_id, lambda p: p.goto_preset(token))
