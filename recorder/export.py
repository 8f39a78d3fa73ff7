"""One MP4 of a camera's footage between two wall-clock times, by stream copy.

The export starts at the keyframe at or before ``start`` — a decoder cannot start anywhere
else — and gives the frames before ``start`` negative timestamps, so the muxer writes an
edit list and players begin showing at ``start`` exactly. Segments are laid end to end on
the wall-clock timeline (segment start + media time), so a gap in the recording is a gap in
the export's timestamps, never a silent splice. Blocking: run it in a thread.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from gateway.errors import NotFound
from recorder.errors import CodecChange
from recorder.index import Segment
from recorder.layout import iso

log = logging.getLogger(__name__)

Progress = Callable[[float], None]  # fraction done, 0..1


@dataclass(frozen=True, slots=True)
class Plan:
    camera_id: str
    start: float  # where playback starts: the request's start, or the first recorded moment
    end: float
    keyframe: float  # wall time of the keyframe the file starts decoding at (<= start)
    segments: tuple[Segment, ...]


def plan(camera_id: str, segments: Sequence[Segment], start: float, end: float) -> Plan:
    """Which segments, from which keyframe; raises NotFound or CodecChange."""
    chosen = tuple(s for s in segments if s.start < end and s.end > start and s.keyframes)
    if not chosen:
        raise NotFound(f"camera {camera_id} has no recordings between {iso(start)} and {iso(end)}")
    for before, after in itertools.pairwise(chosen):
        if after.codec_key != before.codec_key:
            raise CodecChange(
                f"the camera's stream changed at {iso(after.start)} (codec, resolution or "
                "parameter sets); export the ranges before and after it separately"
            )
    first = chosen[0]
    wall_keyframes = [first.start + k for k in first.keyframes]
    i = bisect.bisect_right(wall_keyframes, start) - 1
    keyframe = wall_keyframes[max(i, 0)]
    return Plan(camera_id, max(start, keyframe), min(end, chosen[-1].end), keyframe, chosen)


def write(plan: Plan, root: Path, out: Path, progress: Progress | None = None) -> int:
    """Write the export to ``out`` (via a temporary name); returns the packets written."""
    partial = out.with_name(out.name + ".part")
    try:
        packets = _write(plan, root, partial, progress)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return packets


def _write(plan: Plan, root: Path, path: Path, progress: Progress | None) -> int:
    origin = plan.start
    span = max(plan.end - plan.keyframe, 1e-6)
    packets = 0
    with av.open(str(path), "w", format="mp4") as output:
        output.metadata["creation_time"] = iso(plan.start)
        output.metadata["comment"] = (
            f"sharpeyes camera {plan.camera_id}, {iso(plan.start)} to {iso(plan.end)}"
        )
        vout: av.stream.Stream | None = None
        aout: av.stream.Stream | None = None
        last_dts: dict[int, int] = {}
        started = False
        for segment in plan.segments:
            with av.open(str(root / segment.path)) as source:
                video = source.streams.video[0]
                audio = source.streams.audio[0] if source.streams.audio else None
                if vout is None:  # all segments share one codec key: the first defines
                    vout = output.add_stream_from_template(video, opaque=True)
                    if audio is not None:
                        aout = output.add_stream_from_template(audio)
                streams = [video] if audio is None or aout is None else [video, audio]
                for packet in source.demux(*streams):
                    if packet.size == 0 or packet.dts is None or packet.pts is None:
                        continue
                    tb = packet.time_base
                    assert tb is not None
                    pts_wall = segment.start + float(packet.pts * tb)
                    dts_wall = segment.start + float(packet.dts * tb)
                    if packet.stream is video:
                        if not started:
                            # The first frame written is the planned keyframe (or, when a
                            # camera's timestamps wobble, the first keyframe after it).
                            if not packet.is_keyframe or pts_wall < plan.keyframe - 0.0005:
                                continue
                            started = True
                        if dts_wall >= plan.end:
                            continue  # audio of the last moments may still follow
                        target = vout
                    else:
                        if not started or pts_wall < plan.start or pts_wall >= plan.end:
                            continue
                        assert aout is not None
                        target = aout
                    _retime(packet, segment.start - origin, last_dts, target.index)
                    packet.stream = target
                    output.mux_one(packet)
                    packets += 1
                    if progress is not None and packets % 64 == 0:
                        progress(min(1.0, (dts_wall - plan.keyframe) / span))
    if progress is not None:
        progress(1.0)
    return packets


def _retime(packet: av.Packet[Any], shift: float, last_dts: dict[int, int], key: int) -> None:
    """Move ``packet`` onto the export's timeline; keep dts strictly increasing per track."""
    tb = packet.time_base
    assert tb is not None and packet.pts is not None and packet.dts is not None
    offset = round(Fraction(shift) / tb)
    dts = packet.dts + offset
    pts = packet.pts + offset
    previous = last_dts.get(key)
    if previous is not None and dts <= previous:  # segments overlap by a clock's wobble
        pts += previous + 1 - dts
        dts = previous + 1
    last_dts[key] = dts
    packet.dts, packet.pts = dts, pts
