"""School one-button alarms: devices, intake from the boxes, and the operators' workflow.

- ``POST|GET /api/v1/alarm-devices``, ``GET|PATCH|DELETE /api/v1/alarm-devices/{id}`` — the
  boxes (integrators, in their scope). ``secret`` and ``query_token`` are write-only.
- ``POST /api/v1/alarm-devices/{id}/test`` — a drill from the console: the whole path runs
  (event, linkage, holds, snapshots, the wall's pop-up), marked as a test everywhere.
- ``POST /api/v1/alarms/{device}`` — intake from a box or its vendor platform
  (:mod:`adapters.alarms`: signed, or ``?token=`` for weak vendors). No user login: the
  signature is the credential. ``device`` is the GB/T 28181 code or the vendor serial.
- ``GET /api/v1/alarms`` — alarms not closed yet; ``GET /api/v1/alarms/{id}`` — one alarm.
- ``POST /api/v1/alarms/{id}/ack``, ``POST /api/v1/alarms/{id}/close`` (with a disposition).
- ``GET /api/v1/alarms/{id}/cameras/{camera_id}/snapshot.jpg`` — a linked camera's picture
  taken when the alarm came in.

Scope: a device, and its alarms, belong to the device's region. Objects out of the caller's
scope answer exactly as absent ones. Integrators handle test alarms only; real ones are for
operators and police. Acknowledgements, closes, drills and device changes are audited.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.alarms.device import AlarmDevice, check_secret
from adapters.alarms.errors import AlarmTooLarge, UnknownAlarmDevice
from adapters.alarms.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, token_hash
from gateway.alarms.service import AlarmService, Credentials, region_of
from gateway.api.deps import CameraId, GatewayDep
from gateway.audit import Action
from gateway.auth.principals import Principal, Role
from gateway.auth.rules import CurrentPrincipal
from gateway.catalog.models import Sector
from gateway.errors import Forbidden, InvalidInput, NotFound
from gateway.eventlog import Record

router = APIRouter(tags=["alarms"])
DEVICES = "/api/v1/alarm-devices"
ALARMS = "/api/v1/alarms"
MIN_TOKEN = 24


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlarmDeviceIn(_In):
    id: str = Field(
        description="20-digit GB/T 28181 code, type 134", examples=["34150200001340000001"]
    )
    name: str = Field(min_length=1, max_length=200)
    school: str = Field(min_length=1, max_length=200, description="the owner unit")
    sector: Sector = Sector.EDUCATION
    region: str = Field(description="GB/T 2260 region code: 6, 9 or 12 digits")
    location: str = Field("", max_length=200, description="where the box hangs")
    serial: str | None = Field(None, description="the vendor's serial, usable in the intake URL")
    cameras: list[str] = Field(default_factory=list, description="linked cameras, in order")
    phones: list[str] = Field(default_factory=list, description="contact numbers")
    secret: SecretStr = Field(description="HMAC shared secret, write-only: never returned")
    query_token: SecretStr | None = Field(
        None, description=f"enables ?token= intake (weaker; {MIN_TOKEN}+ characters)"
    )
    heartbeat_interval: float | None = Field(None, description="s; default: the gateway's")

    def to_device(self) -> AlarmDevice:
        return AlarmDevice(
            id=self.id,
            name=self.name,
            school=self.school,
            sector=self.sector,
            region=self.region,
            location=self.location,
            serial=self.serial,
            cameras=tuple(self.cameras),
            phones=tuple(self.phones),
            secret=self.secret.get_secret_value(),
            token_hash=_token_hash(self.query_token),
            heartbeat_interval=self.heartbeat_interval,
        )


class AlarmDevicePatch(_In):
    """Fields to change; absent fields stay. ``query_token: null`` turns token intake off."""

    name: str | None = Field(None, min_length=1, max_length=200)
    school: str | None = Field(None, min_length=1, max_length=200)
    sector: Sector | None = None
    region: str | None = None
    location: str | None = Field(None, max_length=200)
    serial: str | None = None
    cameras: list[str] | None = None
    phones: list[str] | None = None
    secret: SecretStr | None = None
    query_token: SecretStr | None = None
    heartbeat_interval: float | None = None

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "query_token":
                out["token_hash"] = _token_hash(value)
            elif name == "secret":
                if value is None:
                    raise InvalidInput("a device always has a secret", field="secret")
                out["secret"] = check_secret(value.get_secret_value())
            elif name in ("cameras", "phones"):
                out[name] = tuple(value or ())
            elif value is None and name not in ("serial", "heartbeat_interval"):
                raise InvalidInput(f"{name} cannot be null", field=name)
            else:
                out[name] = value
        return out


def _token_hash(token: SecretStr | None) -> str | None:
    if token is None:
        return None
    if len(token.get_secret_value()) < MIN_TOKEN:
        raise InvalidInput(
            f"query_token must be at least {MIN_TOKEN} random characters", field="query_token"
        )
    return token_hash(token.get_secret_value())


class AlarmDeviceOut(BaseModel):
    id: str
    name: str
    school: str
    sector: Sector
    region: str
    location: str
    serial: str | None
    cameras: list[str]
    phones: list[str]
    has_token: bool = Field(description="?token= intake is enabled (weaker than signing)")
    heartbeat_interval: float | None
    online: bool | None = Field(description="null: never heard from")
    last_seen: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, device: AlarmDevice) -> AlarmDeviceOut:
        public = device.public()
        public["last_seen"] = _time(device.last_seen)
        return cls(**public)


class AlarmDevicePage(BaseModel):
    items: list[AlarmDeviceOut]
    total: int
    limit: int
    offset: int


class ReceiptOut(BaseModel):
    status: str = "accepted"
    type: str
    event_id: str | None = Field(description="the alarm's id (emergency, tamper, test)")
    cancelled: list[str] = Field(description="alarms a cancel applied to")
    server_time: float = Field(description="the gateway's clock, for boxes that keep time")


class AlarmOut(BaseModel):
    id: str
    type: str = Field(description="emergency, tamper or test")
    test: bool = Field(description="a drill: never a real emergency")
    state: str = Field(description="raised, acknowledged or closed")
    device: str | None
    start: datetime
    end: datetime | None = Field(description="when it was closed")
    version: int
    data: dict[str, Any]
    thumbnail: str | None

    @classmethod
    def of(cls, record: Record) -> AlarmOut:
        return cls(
            id=record.id,
            type=record.type,
            test=bool(record.data.get("test")),
            state=str(record.data.get("state")),
            device=record.device,
            start=datetime.fromtimestamp(record.start, UTC),
            end=_time(record.end),
            version=record.version,
            data=dict(record.data),
            thumbnail=record.thumbnail_url,
        )


class AckIn(_In):
    note: str = Field("", max_length=2000)


class CloseIn(_In):
    disposition: str = Field(min_length=1, max_length=2000, description="what was done")


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


# --- scope --------------------------------------------------------------------------------


async def _device_in_scope(alarms: AlarmService, principal: Principal, ref: str) -> AlarmDevice:
    device = await alarms.store.get(ref)
    if not principal.scope.allows_region(device.region):
        raise UnknownAlarmDevice(f"alarm device {ref} is not in the catalog")  # as if absent
    return device


async def _check_references(
    gateway: GatewayDep,
    principal: Principal,
    device: AlarmDevice,
    before: AlarmDevice | None = None,
) -> None:
    """The region and newly linked cameras must lie in the caller's scope; out-of-scope ones
    are refused with the words the store uses for absent ones."""
    scope = principal.scope
    if not scope.allows_region(device.region):
        raise InvalidInput(
            f"region {device.region} is not in the catalog; create it first",
            field="region",
            code="unknown_region",
        )
    added = [c for c in device.cameras if before is None or c not in before.cameras]
    if scope.unrestricted or not added:
        return
    found, _ = await gateway.store.list_cameras(ids=added, limit=len(added))
    allowed = {camera.id for camera in found if scope.allows(camera)}
    for camera in added:
        if camera not in allowed:
            raise InvalidInput(
                f"linked camera {camera} is not in the catalog",
                field="cameras",
                code="unknown_camera",
            )


async def _alarm_in_scope(
    alarms: AlarmService, principal: Principal, event_id: str, *, handling: bool = False
) -> Record:
    record = await alarms.alarm(event_id)
    region = region_of(record)
    if not (principal.scope.unrestricted or (region and principal.scope.allows_region(region))):
        raise NotFound(f"alarm {event_id} does not exist")
    if handling and principal.role is Role.INTEGRATOR and not record.data.get("test"):
        raise Forbidden("integrators acknowledge and close test alarms only")
    return record


async def _audit(
    gateway: GatewayDep, principal: Principal, action: Action, **detail: object
) -> None:
    # No camera: the device's region scopes the entry, so scoped readers see their alarms.
    region = detail.get("region")
    await gateway.audit.record(
        principal, action, region=region if isinstance(region, str) else None, detail=detail
    )


# --- devices ------------------------------------------------------------------------------


@router.post(DEVICES, status_code=status.HTTP_201_CREATED, response_model=AlarmDeviceOut)
async def create_device(
    body: AlarmDeviceIn, gateway: GatewayDep, principal: CurrentPrincipal
) -> AlarmDeviceOut:
    device = body.to_device()
    await _check_references(gateway, principal, device)
    created = await gateway.alarms.store.create(device)
    await _audit(
        gateway, principal, Action.ALARM_DEVICE_CREATE, device=created.id, region=created.region
    )
    return AlarmDeviceOut.of(created)


@router.get(DEVICES, response_model=AlarmDevicePage)
async def list_devices(
    gateway: GatewayDep,
    principal: CurrentPrincipal,
    region: Annotated[str | None, Query(description="region code: its whole subtree")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlarmDevicePage:
    devices, total = await gateway.alarms.store.list_devices(
        region=region, within=principal.scope.regions, limit=limit, offset=offset
    )
    return AlarmDevicePage(
        items=[AlarmDeviceOut.of(d) for d in devices], total=total, limit=limit, offset=offset
    )


@router.get(DEVICES + "/{device_id}", response_model=AlarmDeviceOut)
async def get_device(
    device_id: str, gateway: GatewayDep, principal: CurrentPrincipal
) -> AlarmDeviceOut:
    return AlarmDeviceOut.of(await _device_in_scope(gateway.alarms, principal, device_id))


@router.patch(DEVICES + "/{device_id}", response_model=AlarmDeviceOut)
async def update_device(
    device_id: str, body: AlarmDevicePatch, gateway: GatewayDep, principal: CurrentPrincipal
) -> AlarmDeviceOut:
    current = await _device_in_scope(gateway.alarms, principal, device_id)
    changes = body.changes()
    # The device as it would be (validated as a whole), checked before anything is written.
    await _check_references(gateway, principal, replace(current, **changes), current)
    updated = await gateway.alarms.store.update(current.id, changes)
    fields = sorted(body.model_fields_set)  # names only: never the secret's value
    await _audit(
        gateway,
        principal,
        Action.ALARM_DEVICE_UPDATE,
        device=updated.id,
        region=updated.region,
        fields=fields,
    )
    return AlarmDeviceOut.of(updated)


@router.delete(DEVICES + "/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_device(
    device_id: str, gateway: GatewayDep, principal: CurrentPrincipal
) -> Response:
    device = await _device_in_scope(gateway.alarms, principal, device_id)
    await gateway.alarms.store.delete(device.id)
    await _audit(
        gateway, principal, Action.ALARM_DEVICE_DELETE, device=device.id, region=device.region
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    DEVICES + "/{device_id}/test", status_code=status.HTTP_201_CREATED, response_model=AlarmOut
)
async def test_device(device_id: str, gateway: GatewayDep, principal: CurrentPrincipal) -> AlarmOut:
    device = await _device_in_scope(gateway.alarms, principal, device_id)
    record = await gateway.alarms.test(device.id, principal.name)
    await _audit(
        gateway,
        principal,
        Action.ALARM_TEST,
        device=device.id,
        region=device.region,
        alarm=record.id,
    )
    return AlarmOut.of(record)


# --- intake -------------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise AlarmTooLarge(f"an alarm request is at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # chunked bodies carry no length up front
            raise AlarmTooLarge(f"an alarm request is at most {limit} bytes")
    return bytes(body)


@router.post(ALARMS + "/{device}", response_model=ReceiptOut)
async def receive_alarm(
    device: str,
    request: Request,
    gateway: GatewayDep,
    token: Annotated[str | None, Query(description="the device's query token (weaker)")] = None,
) -> ReceiptOut:
    alarms = gateway.alarms
    body = await _read_body(request, alarms.settings.max_body)
    credentials = Credentials(
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        token=token,
    )
    receipt = await alarms.receive(device, body, credentials)
    return ReceiptOut(
        type=receipt.type.value,
        event_id=receipt.event_id,
        cancelled=list(receipt.cancelled),
        server_time=datetime.now(UTC).timestamp(),
    )


# --- workflow -----------------------------------------------------------------------------


@router.get(ALARMS, response_model=list[AlarmOut])
async def open_alarms(gateway: GatewayDep, principal: CurrentPrincipal) -> list[AlarmOut]:
    """Alarms not closed yet, in the caller's scope, newest first."""
    scope = principal.scope
    return [
        AlarmOut.of(record)
        for record in await gateway.alarms.open_alarms()
        if scope.unrestricted or ((region := region_of(record)) and scope.allows_region(region))
    ]


@router.get(ALARMS + "/{event_id}", response_model=AlarmOut)
async def get_alarm(event_id: str, gateway: GatewayDep, principal: CurrentPrincipal) -> AlarmOut:
    return AlarmOut.of(await _alarm_in_scope(gateway.alarms, principal, event_id))


@router.post(ALARMS + "/{event_id}/ack", response_model=AlarmOut)
async def acknowledge_alarm(
    event_id: str, gateway: GatewayDep, principal: CurrentPrincipal, body: AckIn | None = None
) -> AlarmOut:
    alarm = await _alarm_in_scope(gateway.alarms, principal, event_id, handling=True)
    record = await gateway.alarms.acknowledge(alarm.id, principal.name, body.note if body else "")
    await _audit(
        gateway,
        principal,
        Action.ALARM_ACK,
        alarm=record.id,
        type=record.type,
        test=bool(record.data.get("test")),
        device=record.device,
        region=region_of(record),
    )
    return AlarmOut.of(record)


@router.post(ALARMS + "/{event_id}/close", response_model=AlarmOut)
async def close_alarm(
    event_id: str, body: CloseIn, gateway: GatewayDep, principal: CurrentPrincipal
) -> AlarmOut:
    alarm = await _alarm_in_scope(gateway.alarms, principal, event_id, handling=True)
    record = await gateway.alarms.close_alarm(alarm.id, principal.name, body.disposition)
    await _audit(
        gateway,
        principal,
        Action.ALARM_CLOSE,
        alarm=record.id,
        type=record.type,
        test=bool(record.data.get("test")),
        device=record.device,
        region=region_of(record),
        disposition=body.disposition,
    )
    return AlarmOut.of(record)


@router.get(
    ALARMS + "/{event_id}/cameras/{camera_id}/snapshot.jpg",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "taken at the alarm"}},
)
async def alarm_snapshot(
    event_id: str, camera_id: CameraId, gateway: GatewayDep, principal: CurrentPrincipal
) -> FileResponse:
    alarm = await _alarm_in_scope(gateway.alarms, principal, event_id)
    path = await gateway.alarms.snapshot_path(alarm.id, camera_id)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private"})
