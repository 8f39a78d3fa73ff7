"""The one packet type that flows from the hub to every consumer.

The hub normalises whatever a source delivers once (see :mod:`gateway.hub.normaliser`);
consumers (relay, recorder, analytics sampler, snapshots) receive the very same immutable
object and must never mutate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Kind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class CodecParams:
    """Codec parameters shared by reference between all packets of one track.

    A new object is created when the parameters change mid-stream (new SPS/PPS, new
    resolution), so a consumer detects a change with ``packet.codec is not last_codec``.
    """

    kind: Kind
    name: str  # FFmpeg codec name: "h264", "hevc", "aac", "pcm_alaw", ...
    time_base: Fraction
    extradata: bytes = b""  # video: parameter sets in Annex-B; audio: codec config
    width: int = 0
    height: int = 0
    fps: float = 0.0
    profile: str | None = None  # e.g. "Baseline", "Constrained Baseline", "Main", "High"
    has_b_frames: bool = False
    sample_rate: int = 0
    channels: int = 0


@dataclass(frozen=True, slots=True)
class Packet:
    """One access unit.

    Video payloads are Annex-B (start codes) with the parameter sets in front of every
    IDR, so any consumer can start decoding at any keyframe. ``pts``/``dts`` are in
    ``codec.time_base`` and strictly increasing per track (dts) across reconnects of the
    camera. ``arrival`` is the gateway's wall-clock time (``time.time()``) when the packet
    was read: recordings and events use it, never the camera's clock.
    """

    codec: CodecParams
    data: bytes
    pts: int
    dts: int
    keyframe: bool
    arrival: float
    seq: int  # per stream, increasing by one per packet; lets consumers count gaps

    @property
    def kind(self) -> Kind:
        return self.codec.kind

    @property
    def is_video_keyframe(self) -> bool:
        return self.keyframe and self.codec.kind == "video"

    @property
    def time_base(self) -> Fraction:
        return self.codec.time_base

    @property
    def pts_seconds(self) -> float:
        return float(self.pts * self.codec.time_base)
