"""Turns a source's raw packets into the hub's one packet type, once for all consumers.

- Video is Annex-B, with the current parameter sets in front of every keyframe, so any
  consumer (a new WebRTC viewer, a new recording segment) can start at any keyframe.
- Parameter sets that change in-band (new SPS: new resolution or profile) produce a new
  :class:`CodecParams` object; unchanged ones keep the same object across reconnects.
- Timestamps are re-based so that dts strictly increases per track for the stream's whole
  life, across reconnects, wraps and jumps; a gap in the stream becomes the same gap in
  timestamps (from the gateway's clock), so the timeline stays true to wall time.

Runs in the stream's reader thread: nothing here touches the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from adapters.source import RawPacket, Track
from gateway.codecs import annexb, h264, hevc
from gateway.errors import UnsupportedCodec
from gateway.hub.packet import CodecParams, Packet

VIDEO_CODECS = frozenset({"h264", "hevc"})
# A forward jump larger than this (beyond what the wall clock explains) is a camera clock
# jump, not a real gap: it is re-based.
MAX_FORWARD_JUMP_S = 10.0


@dataclass(slots=True)
class _TrackState:
    codec: CodecParams
    length_size: int  # 0 when the source's payloads are already Annex-B
    last_dts: int | None = None  # output timeline
    last_arrival: float = 0.0
    offset: int | None = None  # added to the source's dts/pts; None: re-base on next packet
    frame_ticks: int = 1  # typical packet duration, for synthesising missing timestamps
    last_src_dts: int | None = None


class Normaliser:
    def __init__(self) -> None:
        self._tracks: dict[int, _TrackState] = {}
        self._by_kind: dict[str, _TrackState] = {}  # survives reconnects: continuity
        self._seq = 0
        # Output seconds minus source seconds, one for all tracks of a session: the source's
        # tracks share one clock (RTCP), so one offset keeps audio and video in sync.
        self._session_base: Fraction | None = None
        self._end: Fraction | None = None  # latest output time, seconds, over all tracks
        self._end_arrival = 0.0

    def start(self, tracks: list[Track]) -> None:
        """A (re)connect: describe the new session's tracks; timestamps re-base."""
        if not any(t.kind == "video" for t in tracks):
            raise UnsupportedCodec("the source has no video track")
        self._tracks = {}
        self._session_base = None
        for track in tracks:
            if track.kind == "video" and track.codec not in VIDEO_CODECS:
                raise UnsupportedCodec(
                    f"video codec {track.codec} is not supported (H.264 or H.265 needed)"
                )
            codec, length_size = _codec_params(track)
            previous = self._by_kind.get(track.kind)
            if previous is not None and _same_codec(previous.codec, codec):
                codec = previous.codec  # same object: consumers see no change
            state = _TrackState(codec=codec, length_size=length_size)
            if previous is not None:
                state.last_dts, state.last_arrival = previous.last_dts, previous.last_arrival
                state.frame_ticks = previous.frame_ticks
            if track.kind == "video" and track.fps > 0:
                state.frame_ticks = max(1, round(1 / (track.fps * codec.time_base)))
            self._tracks[track.index] = state
            self._by_kind[track.kind] = state

    def push(self, raw: RawPacket, arrival: float) -> Packet | None:
        """The normalised packet, or None for packets of tracks the hub does not carry."""
        state = self._tracks.get(raw.track)
        if state is None or not raw.data:
            return None
        data, keyframe = raw.data, raw.keyframe
        if state.codec.kind == "video":
            data, keyframe = self._video_payload(state, data, keyframe)
        dts = self._timestamp(state, raw, arrival)
        pts = dts if raw.pts is None else max(dts, raw.pts + (state.offset or 0))
        self._seq += 1
        return Packet(
            codec=state.codec,
            data=data,
            pts=pts,
            dts=dts,
            keyframe=keyframe,
            arrival=arrival,
            seq=self._seq,
        )

    def _video_payload(self, state: _TrackState, data: bytes, keyframe: bool) -> tuple[bytes, bool]:
        if state.length_size:
            data = annexb.length_prefixed_to_annexb(data, state.length_size)
        elif not annexb.is_annexb(data):
            raise UnsupportedCodec("video payload is neither Annex-B nor length-prefixed")
        codec = state.codec
        is_h264 = codec.name == "h264"
        nal_type = h264.nal_type if is_h264 else hevc.nal_type
        param_types = h264.PARAMETER_SETS if is_h264 else hevc.PARAMETER_SETS
        nals = annexb.split_nals(data)
        types = [nal_type(n) for n in nals]
        is_random_access = (
            (h264.NAL_IDR in types) if is_h264 else any(t in hevc.IRAP for t in types)
        )
        keyframe = keyframe or is_random_access
        in_band = [n for n, t in zip(nals, types, strict=True) if t in param_types]
        if in_band:
            extradata = annexb.join_nals(_unique(in_band))
            if extradata != codec.extradata:
                state.codec = _with_parameter_sets(codec, extradata, in_band)
                self._by_kind["video"] = state
        elif keyframe and codec.extradata:
            data = codec.extradata + data
        return data, keyframe

    def _timestamp(self, state: _TrackState, raw: RawPacket, arrival: float) -> int:
        tb = state.codec.time_base
        src = raw.dts if raw.dts is not None else raw.pts
        if src is None:
            # Some RTSP sessions deliver the first packets before RTCP sync, without
            # timestamps: synthesise from the previous packet.
            src = (state.last_src_dts + state.frame_ticks) if state.last_src_dts is not None else 0
        if state.offset is not None and state.last_dts is not None:
            candidate = src + state.offset
            elapsed = (arrival - state.last_arrival) / tb
            if candidate <= state.last_dts or candidate - state.last_dts > elapsed + (
                MAX_FORWARD_JUMP_S / tb
            ):
                # A wrap, jump back or clock jump on this track alone: re-base it after
                # the real (wall-clock) gap, never backwards.
                gap = max(state.frame_ticks, round((arrival - state.last_arrival) / tb))
                state.offset = state.last_dts + gap - src
        if state.offset is None:  # the track's first packet of this session
            if self._session_base is None:
                # The session's first packet: the timeline goes on after the real gap.
                start = Fraction(0)
                if self._end is not None:
                    silence = Fraction(arrival - self._end_arrival).limit_denominator(1_000_000)
                    start = self._end + max(Fraction(state.frame_ticks) * tb, silence)
                self._session_base = start - src * tb
            state.offset = round(self._session_base / tb)
        dts = src + state.offset
        if state.last_dts is not None and dts <= state.last_dts:
            dts = state.last_dts + 1
        if state.last_src_dts is not None and 0 < src - state.last_src_dts < state.frame_ticks * 4:
            state.frame_ticks = src - state.last_src_dts
        state.last_src_dts, state.last_dts, state.last_arrival = src, dts, arrival
        end = dts * tb
        if self._end is None or end > self._end:
            self._end = end
        self._end_arrival = arrival
        return dts


def _codec_params(track: Track) -> tuple[CodecParams, int]:
    extradata, length_size = track.extradata, 0
    if track.kind == "video" and extradata and not annexb.is_annexb(extradata):
        convert = h264.avcc_to_annexb if track.codec == "h264" else hevc.hvcc_to_annexb
        try:
            extradata, length_size = convert(extradata)
        except (ValueError, IndexError) as exc:
            raise UnsupportedCodec(f"cannot read the {track.codec} codec configuration") from exc
    params = CodecParams(
        kind=track.kind,
        name=track.codec,
        time_base=Fraction(track.time_base),
        extradata=extradata,
        width=track.width,
        height=track.height,
        fps=track.fps,
        profile=track.profile,
        has_b_frames=track.has_b_frames,
        sample_rate=track.sample_rate,
        channels=track.channels,
    )
    if track.codec == "h264" and extradata:
        params = _with_parameter_sets(params, extradata, annexb.split_nals(extradata))
    return params, length_size


def _with_parameter_sets(codec: CodecParams, extradata: bytes, nals: list[bytes]) -> CodecParams:
    width, height, profile = codec.width, codec.height, codec.profile
    if codec.name == "h264":
        for nal in nals:
            if h264.nal_type(nal) == h264.NAL_SPS:
                try:
                    sps = h264.parse_sps(nal)
                except ValueError:
                    break
                width, height, profile = sps.width, sps.height, sps.profile
    return replace(codec, extradata=extradata, width=width, height=height, profile=profile)


def _same_codec(a: CodecParams, b: CodecParams) -> bool:
    return replace(a, fps=0.0) == replace(b, fps=0.0)


def _unique(nals: list[bytes]) -> list[bytes]:
    """Parameter sets in order, each once (encoders repeat them within one access unit)."""
    seen: list[bytes] = []
    for nal in nals:
        if nal not in seen:
            seen.append(nal)
    return seen
