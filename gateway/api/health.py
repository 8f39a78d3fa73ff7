"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from gateway import metrics
from gateway.api.deps import GatewayDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(gateway: GatewayDep) -> dict[str, object]:
    streams = list(gateway.hub)
    online = sum(1 for s in streams if s.status.state == "online")
    return {"status": "ok", "streams": len(streams), "online": online}


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(gateway: GatewayDep) -> PlainTextResponse:
    return PlainTextResponse(
        await metrics.render(gateway), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
