"""Camera health as the hub sees it: state, reason vocabulary and measured stream facts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    ONLINE = "online"
    CONNECTING = "connecting"
    OFFLINE = "offline"
    IDLE = "idle"  # on-demand camera with no consumer; ``reason`` keeps the last verdict


class Reason(StrEnum):
    """Why a camera is not online. Fixed: dashboards and the police platform key on it."""

    NONE = ""
    AUTH_FAILED = "auth_failed"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    UNSUPPORTED_CODEC = "unsupported_codec"
    STREAM_ENDED = "stream_ended"
    PROTOCOL_ERROR = "protocol_error"
    NO_VIDEO = "no_video"
    NEVER_CONNECTED = "never_connected"


@dataclass(slots=True)
class StreamStatus:
    state: State = State.IDLE
    reason: Reason = Reason.NEVER_CONNECTED
    message: str = ""
    since: float = 0.0  # wall-clock time the state last changed
    last_packet: float | None = None
    codec: str | None = None
    profile: str | None = None
    width: int = 0
    height: int = 0
    fps: float = 0.0  # measured over the last few seconds, not the camera's claim
    bitrate: float = 0.0  # bits per second, measured
    has_b_frames: bool = False
    audio_codec: str | None = None
    reconnects: int = 0
    packets: int = 0
    bytes: int = 0
