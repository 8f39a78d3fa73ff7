"""What every camera adapter gives the hub: a blocking packet source.

Sources are blocking on purpose: PyAV's demuxers are, and the hub runs each pull in a
thread of its own. ``open`` and ``read`` raise :class:`gateway.errors.SourceError`
subclasses whose ``reason`` is a word of the camera status vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from gateway.hub.packet import Kind


@dataclass(frozen=True, slots=True)
class Track:
    index: int
    kind: Kind
    codec: str  # FFmpeg codec name
    time_base: Fraction
    extradata: bytes = b""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    profile: str | None = None
    has_b_frames: bool = False
    sample_rate: int = 0
    channels: int = 0


@dataclass(slots=True)
class RawPacket:
    track: int  # Track.index
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool


class Source(Protocol):
    @property
    def display_url(self) -> str:
        """The source's address with credentials masked, for logs and errors."""
        ...

    def open(self) -> list[Track]:
        """Connect and describe the tracks; blocking."""
        ...

    def read(self) -> RawPacket:
        """The next packet; blocking. Raises StreamEnded at the end."""
        ...

    def close(self) -> None: ...
