"""Pydantic models at the API and configuration edge.

Domain rules (GB/T 28181 and GB/T 2260 codes, URLs and credentials) live in
:mod:`gateway.catalog`; the validators here call them so a bad value is reported on its own
field, whether it came from an HTTP body or a line of the YAML configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from gateway.catalog.codes import parse_device_code, parse_region_code
from gateway.catalog.models import (
    Camera,
    CameraClass,
    Origin,
    RecordingPolicy,
    Region,
    Sector,
    StreamSource,
)
from gateway.errors import InvalidInput
from gateway.hub.status import StreamStatus


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _domain(check: Any, value: Any) -> Any:
    # Domain errors become pydantic ValueErrors so they are reported on the field.
    try:
        check(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    return value


class SourceIn(_In):
    main_url: str = Field(description="rtsp:// or rtsps:// URL of the main stream")
    sub_url: str | None = Field(None, description="URL of the sub stream, if any")
    username: str | None = Field(None, max_length=128)
    password: SecretStr | None = Field(None, description="write-only: never returned")

    def to_source(self) -> StreamSource:
        return StreamSource(
            main_url=self.main_url,
            sub_url=self.sub_url,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
        )

    @field_validator("main_url", "sub_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            _domain(lambda v: StreamSource(main_url=v), value)
        return value


class CameraIn(_In):
    id: str = Field(
        description="20-digit GB/T 28181 device code", examples=["34010200001320000001"]
    )
    name: str = Field(min_length=1, max_length=200)
    camera_class: CameraClass = Field(alias="class", description="A 一类, B 二类, C 三类")
    region: str = Field(description="GB/T 2260 region code: 6, 9 or 12 digits")
    owner_unit: str = Field(min_length=1, max_length=200)
    sector: Sector
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    source: SourceIn
    recording: RecordingPolicy = RecordingPolicy.OFF
    tags: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return str(_domain(parse_device_code, value))

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return str(_domain(parse_region_code, value))

    def to_camera(self, origin: Origin = Origin.API) -> Camera:
        return Camera(
            id=self.id,
            name=self.name,
            camera_class=self.camera_class,
            region=self.region,
            owner_unit=self.owner_unit,
            sector=self.sector,
            source=self.source.to_source(),
            lat=self.lat,
            lon=self.lon,
            recording=self.recording,
            tags=tuple(self.tags),
            origin=origin,
        )


class CameraPatch(_In):
    """Fields to change; absent fields stay. ``source`` replaces the whole source."""

    name: str | None = Field(None, min_length=1, max_length=200)
    camera_class: CameraClass | None = Field(None, alias="class")
    region: str | None = None
    owner_unit: str | None = Field(None, min_length=1, max_length=200)
    sector: Sector | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    source: SourceIn | None = None
    recording: RecordingPolicy | None = None
    tags: list[str] | None = Field(None, max_length=50)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else str(_domain(parse_region_code, value))

    def changes(self) -> dict[str, Any]:
        """The dataclass fields to replace (only those the client sent)."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "source":
                out["source"] = value.to_source() if value is not None else None
            elif name == "tags":
                out["tags"] = tuple(value or ())
            else:
                out[name] = value
        return out


class StatusOut(BaseModel):
    state: str = Field(description="online | connecting | offline")
    reason: str = Field(description="why not online: auth_failed, not_found, timeout, ...")
    message: str
    since: datetime | None
    active: bool = Field(description="the gateway holds a connection to the camera now")
    last_packet: datetime | None
    codec: str | None
    profile: str | None
    width: int
    height: int
    fps: float
    bitrate: float
    has_b_frames: bool
    audio_codec: str | None
    reconnects: int
    consumers: int

    @classmethod
    def of(cls, status: StreamStatus | None, *, active: bool, consumers: int) -> StatusOut:
        s = status or StreamStatus()
        return cls(
            state=s.state.value,
            reason=s.reason.value,
            message=s.message,
            since=_time(s.since),
            active=active,
            last_packet=_time(s.last_packet),
            codec=s.codec,
            profile=s.profile,
            width=s.width,
            height=s.height,
            fps=s.fps,
            bitrate=s.bitrate,
            has_b_frames=s.has_b_frames,
            audio_codec=s.audio_codec,
            reconnects=s.reconnects,
            consumers=consumers,
        )


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


class SourceOut(BaseModel):
    main_url: str
    sub_url: str | None
    has_credentials: bool


class CameraOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    camera_class: CameraClass = Field(serialization_alias="class")
    class_label: str
    region: str
    owner_unit: str
    sector: Sector
    lat: float | None
    lon: float | None
    source: SourceOut
    recording: RecordingPolicy
    tags: list[str]
    origin: Origin
    created_at: datetime
    updated_at: datetime
    status: StatusOut

    @classmethod
    def of(cls, camera: Camera, status: StatusOut) -> CameraOut:
        return cls(
            id=camera.id,
            name=camera.name,
            camera_class=camera.camera_class,
            class_label=camera.camera_class.label,
            region=camera.region,
            owner_unit=camera.owner_unit,
            sector=camera.sector,
            lat=camera.lat,
            lon=camera.lon,
            source=SourceOut(**camera.source.public()),
            recording=camera.recording,
            tags=list(camera.tags),
            origin=camera.origin,
            created_at=camera.created_at,
            updated_at=camera.updated_at,
            status=status,
        )


class CameraPage(BaseModel):
    items: list[CameraOut]
    total: int
    limit: int
    offset: int


class RegionIn(_In):
    code: str = Field(description="GB/T 2260 county (6), township (9) or village (12 digits)")
    name: str = Field(min_length=1, max_length=200)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return str(_domain(parse_region_code, value))

    def to_region(self) -> Region:
        return Region(code=self.code, name=self.name)


class RegionPatch(_In):
    name: str = Field(min_length=1, max_length=200)


class RegionNodeOut(BaseModel):
    code: str
    name: str
    level: str
    parent: str | None
    cameras: int = Field(description="cameras in this region and below")
    online: int = Field(description="of those, online now")
    children: list[RegionNodeOut] = []


class ErrorOut(BaseModel):
    code: str = Field(description="stable machine-readable error code")
    message: str
    field: str | None = None
    errors: list[dict[str, Any]] | None = None
