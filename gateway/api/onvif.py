"""/api/v1/onvif: discovery and onboarding by address and password; a camera's ONVIF facts."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.onvif.discovery import Discovered
from adapters.onvif.manager import Health, Onboarded, onvif_info
from gateway.api.cameras import camera_out
from gateway.api.deps import CameraId, GatewayDep
from gateway.api.schemas import CameraIn, CameraOut, SourceIn
from gateway.audit import Action
from gateway.auth.rules import CurrentPrincipal, require_scope
from gateway.catalog.models import Camera, OnvifInfo, StreamSource

router = APIRouter(prefix="/api/v1", tags=["onvif"])

Port = Annotated[int, Field(ge=1, le=65535)]
WS_DISCOVERY_PORT = 3702


class DiscoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interface: str | None = Field(None, description="multicast out of this address or name")
    host: str | None = Field(None, description="probe this one host by unicast instead")
    timeout: float | None = Field(None, gt=0, le=30, description="seconds to collect replies")


class DiscoveredOut(BaseModel):
    endpoint: str
    xaddrs: list[str]
    scopes: list[str]
    types: list[str]
    name: str | None
    hardware: str | None
    sender: str
    camera_id: str | None = Field(description="the catalog camera at this address, if any")
    in_catalog: bool

    @classmethod
    def of(cls, device: Discovered, camera_id: str | None) -> DiscoveredOut:
        return cls(
            endpoint=device.endpoint,
            xaddrs=list(device.xaddrs),
            scopes=list(device.scopes),
            types=list(device.types),
            name=device.name,
            hardware=device.hardware,
            sender=device.sender,
            camera_id=camera_id,
            in_catalog=camera_id is not None,
        )


class DiscoverOut(BaseModel):
    devices: list[DiscoveredOut]


class OnboardIn(CameraIn):
    """The catalog fields of ``POST /api/v1/cameras`` without ``source``, plus the device's
    address and account (the same account then opens its RTSP streams)."""

    host: str = Field(min_length=1, max_length=253, description="device address or name")
    port: Port = Field(80, description="ONVIF HTTP port")
    username: str | None = Field(None, max_length=128)
    password: SecretStr | None = Field(None, description="write-only: never returned")
    # Not accepted: the stream URIs come from the device (GetStreamUri).
    source: None = None  # type: ignore[assignment]

    def describe(self, source: StreamSource, onvif: OnvifInfo) -> Camera:
        stream = SourceIn(
            main_url=source.main_url,
            sub_url=source.sub_url,
            username=source.username,
            password=self.password,
        )
        return replace(self.model_copy(update={"source": stream}).to_camera(), onvif=onvif)


class ProfileOut(BaseModel):
    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float
    uri: str
    ptz: bool


class HealthOut(BaseModel):
    ok: bool
    checked_at: float
    code: str
    message: str
    clock_offset: float | None

    @classmethod
    def of(cls, health: Health) -> HealthOut:
        return cls(
            ok=health.ok,
            checked_at=health.checked_at,
            code=health.code,
            message=health.message,
            clock_offset=health.clock_offset,
        )


class EventsOut(BaseModel):
    state: str = Field(description="subscribed | retrying | starting | stopped")
    message: str
    subscriptions: int = Field(description="PullPoint subscriptions created, all time")
    renewals: int
    alarms: int


class OnvifOut(BaseModel):
    host: str
    port: int
    manufacturer: str
    model: str
    firmware: str
    serial: str
    main_profile: str
    sub_profile: str | None
    snapshot_uri: str | None
    ptz: bool
    events: bool
    health: HealthOut | None
    event_subscription: EventsOut | None


class OnboardOut(BaseModel):
    camera: CameraOut
    created: bool
    profiles: list[ProfileOut]
    onvif: OnvifOut
    clock_offset: float | None = Field(description="device clock minus the gateway's, seconds")
    warnings: list[str]


@router.post("/onvif/discover", response_model=DiscoverOut)
async def discover(body: DiscoverIn, gateway: GatewayDep) -> DiscoverOut:
    if body.host is not None:  # a unicast probe goes where the caller says: the SSRF policy
        await gateway.netpolicy.check_host(body.host, WS_DISCOVERY_PORT)
    found = await gateway.onvif.discover(
        interface=body.interface, host=body.host, timeout=body.timeout
    )
    return DiscoverOut(devices=[DiscoveredOut.of(device, cid) for device, cid in found])


@router.post(
    "/onvif/cameras",
    response_model=OnboardOut,
    response_model_by_alias=True,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "an existing camera was updated"}},
)
async def onboard(
    body: OnboardIn, gateway: GatewayDep, response: Response, principal: CurrentPrincipal
) -> OnboardOut:
    require_scope(principal, body)
    await gateway.netpolicy.check_host(body.host, body.port)
    password = body.password.get_secret_value() if body.password else None
    done: Onboarded = await gateway.onvif.onboard(
        body.host, body.port, body.username, password, body.describe
    )
    await gateway.audit.record(
        principal,
        Action.ONVIF_ONBOARD,
        camera=done.camera.id,
        detail={"host": body.host, "port": body.port, "created": done.created},
    )
    if not done.created:
        response.status_code = status.HTTP_200_OK
    facts = done.facts
    warnings = []
    offset = facts.clock_offset
    if offset is not None and abs(offset) > gateway.settings.onvif.clock_tolerance:
        warnings.append(
            f"the device clock is {offset:+.0f} s off the gateway's; requests are signed with "
            "its time, but its recordings and alarms carry the wrong time: set up NTP on it"
        )
    if facts.sub is None:
        warnings.append("the device offers one stream only: live views use the main stream")
    return OnboardOut(
        camera=camera_out(gateway, done.camera),
        created=done.created,
        profiles=[ProfileOut(**asdict(p)) for p in facts.profiles],
        onvif=_onvif_out(gateway, done.camera),
        clock_offset=offset,
        warnings=warnings,
    )


@router.get("/cameras/{camera_id}/onvif", response_model=OnvifOut)
async def camera_onvif(camera_id: CameraId, gateway: GatewayDep) -> OnvifOut:
    return _onvif_out(gateway, await gateway.store.get_camera(camera_id))


@router.post("/cameras/{camera_id}/onvif/check", response_model=OnvifOut)
async def check_camera(camera_id: CameraId, gateway: GatewayDep) -> OnvifOut:
    """Re-check the device now (address, account, stream URIs), as the periodic check does."""
    camera = await gateway.store.get_camera(camera_id)
    onvif_info(camera)  # 409 for a camera that was not onboarded through ONVIF
    await gateway.onvif.check(camera)
    return _onvif_out(gateway, await gateway.store.get_camera(camera_id))


def _onvif_out(gateway: GatewayDep, camera: Camera) -> OnvifOut:
    info = onvif_info(camera)
    health = gateway.onvif.health.get(camera.id)
    watcher = gateway.onvif.watchers.get(camera.id)
    return OnvifOut(
        **asdict(info),
        health=HealthOut.of(health) if health else None,
        event_subscription=EventsOut(**asdict(watcher.status)) if watcher else None,
    )
