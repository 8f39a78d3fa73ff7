"""PTZ control of one camera through its ONVIF PTZ service (ONVIF PTZ Service Spec 2.x).

Coordinates are ONVIF's generic spaces: pan and tilt in [-1, 1], zoom in [0, 1] for
positions; velocities in [-1, 1]; translations in [-2, 2] for pan/tilt and [-1, 1] for zoom.
The device clamps out-of-range values or faults; the API validates the ranges first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.onvif.device import OnvifDevice


@dataclass(frozen=True, slots=True)
class Position:
    pan: float | None
    tilt: float | None
    zoom: float | None


@dataclass(frozen=True, slots=True)
class PtzStatus:
    position: Position
    moving: bool


@dataclass(frozen=True, slots=True)
class Preset:
    token: str
    name: str
    position: Position | None


def _vector(pan: float | None, tilt: float | None, zoom: float | None) -> dict[str, Any]:
    vector: dict[str, Any] = {}
    if pan is not None or tilt is not None:
        vector["PanTilt"] = {"x": pan or 0.0, "y": tilt or 0.0}
    if zoom is not None:
        vector["Zoom"] = {"x": zoom}
    return vector


def _position(vector: Any) -> Position:
    pan_tilt = getattr(vector, "PanTilt", None)
    zoom = getattr(vector, "Zoom", None)
    return Position(
        pan=float(pan_tilt.x) if pan_tilt is not None else None,
        tilt=float(pan_tilt.y) if pan_tilt is not None else None,
        zoom=float(zoom.x) if zoom is not None else None,
    )


class Ptz:
    """The PTZ node behind one media profile (the camera's main profile)."""

    def __init__(self, device: OnvifDevice, profile: str) -> None:
        self._device = device
        self._profile = profile

    async def _call(self, operation: str, **params: Any) -> Any:
        return await self._device.call("ptz", operation, {"ProfileToken": self._profile, **params})

    async def status(self) -> PtzStatus:
        reply = await self._call("GetStatus")
        move = reply.MoveStatus
        states = [getattr(move, axis, None) for axis in ("PanTilt", "Zoom")] if move else []
        return PtzStatus(
            position=_position(reply.Position),
            moving=any(str(state).upper() == "MOVING" for state in states),
        )

    async def continuous_move(
        self,
        pan: float | None,
        tilt: float | None,
        zoom: float | None,
        timeout: float | None = None,
    ) -> None:
        """Move at a velocity until :meth:`stop`, or until ``timeout`` seconds have passed
        (the device stops by itself: a viewer who closes the page leaves no camera turning)."""
        params: dict[str, Any] = {"Velocity": _vector(pan, tilt, zoom)}
        if timeout is not None:
            params["Timeout"] = f"PT{timeout:g}S"
        await self._call("ContinuousMove", **params)

    async def stop(self, pan_tilt: bool = True, zoom: bool = True) -> None:
        await self._call("Stop", PanTilt=pan_tilt, Zoom=zoom)

    async def absolute_move(
        self, pan: float | None, tilt: float | None, zoom: float | None
    ) -> None:
        await self._call("AbsoluteMove", Position=_vector(pan, tilt, zoom))

    async def relative_move(
        self, pan: float | None, tilt: float | None, zoom: float | None
    ) -> None:
        await self._call("RelativeMove", Translation=_vector(pan, tilt, zoom))

    async def home(self) -> None:
        await self._call("GotoHomePosition")

    async def presets(self) -> list[Preset]:
        reply = await self._call("GetPresets")
        return [
            Preset(
                token=str(p.token),
                name=str(p.Name or p.token),
                position=_position(p.PTZPosition) if p.PTZPosition is not None else None,
            )
            for p in reply or ()
        ]

    async def goto_preset(self, token: str) -> None:
        await self._call("GotoPreset", PresetToken=token)

    async def set_preset(self, name: str, token: str | None = None) -> str:
        """Store the current position as a preset (``token`` overwrites one); its token."""
        params: dict[str, Any] = {"PresetName": name}
        if token is not None:
            params["PresetToken"] = token
        reply = await self._call("SetPreset", **params)
        return str(reply)
