"""Live view over WebRTC: the WHEP endpoint (RFC 9725) and the relay's counters."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from gateway.api.deps import CameraId, GatewayDep
from gateway.auth.rules import CurrentPrincipal
from gateway.relay.whep import SdpError, UnsupportedMediaType

router = APIRouter(tags=["live"])

MAX_OFFER_BYTES = 64 * 1024  # real offers are a few kB; this bounds what is read
SDP = "application/sdp"

StreamChoice = Annotated[Literal["main", "sub"], Query(description="main or sub stream")]


@router.post(
    "/api/v1/cameras/{camera_id}/whep",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses={201: {"content": {SDP: {}}, "description": "the SDP answer; Location: session"}},
    openapi_extra={"requestBody": {"required": True, "content": {SDP: {}}}},
)
async def whep_offer(
    camera_id: CameraId,
    request: Request,
    gateway: GatewayDep,
    principal: CurrentPrincipal,
    stream: StreamChoice = "main",
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != SDP:
        raise UnsupportedMediaType(
            f"a WHEP offer is sent as Content-Type: {SDP}, not {content_type or 'nothing'}"
        )
    camera = await gateway.store.get_camera(camera_id)  # 404 for unknown cameras
    hub_stream = gateway.stream(camera_id, stream)  # 404: the camera has no sub stream
    body = await request.body()
    if len(body) > MAX_OFFER_BYTES:
        raise SdpError(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    try:
        offer = body.decode()
    except UnicodeDecodeError:
        offer = ""  # refused by the SDP check with the same message as any other non-SDP
    # Within the caller's live-view limit; audited as live_start, and live_stop with the
    # duration when the session ends (gateway/auth/service.py LiveViews).
    session, answer = await gateway.security.live.start(
        principal,
        camera_id,
        stream,
        lambda: gateway.relay.open(
            camera_id, stream, hub_stream, offer, has_sub_stream=camera.source.sub_url is not None
        ),
    )
    location = f"/api/v1/cameras/{camera_id}/whep/{session.id}"
    return Response(
        answer,
        status_code=status.HTTP_201_CREATED,
        media_type=SDP,
        headers={"Location": location, "Cache-Control": "no-store"},
    )


@router.delete("/api/v1/cameras/{camera_id}/whep/{session_id}")
async def whep_delete(camera_id: CameraId, session_id: str, gateway: GatewayDep) -> Response:
    await gateway.relay.close_session(camera_id, session_id)
    return Response(status_code=status.HTTP_200_OK)


@router.get("/api/v1/relay")
async def relay_stats(gateway: GatewayDep) -> dict[str, object]:
    """Live-view sessions now, and all-time counts of opened, ended (by why) and refused."""
    return gateway.relay.stats()
