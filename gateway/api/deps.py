"""Shared request dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from gateway.app import Gateway
from gateway.catalog.codes import parse_device_code


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _camera_id(
    camera_id: Annotated[str, Path(description="20-digit GB/T 28181 device code")],
) -> str:
    parse_device_code(camera_id, field="camera_id")  # 422 naming the wrong part
    return camera_id


GatewayDep = Annotated[Gateway, Depends(_gateway)]
CameraId = Annotated[str, Depends(_camera_id)]
