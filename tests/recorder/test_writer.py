"""The segment writer on real footage (B-frames, AAC audio) and real encoder output."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import av
import pytest

from gateway.hub.normaliser import Normaliser
from gateway.hub.packet import Packet
from recorder import layout, mp4
from recorder.index import GapReason, Segment
from recorder.writer import CameraWriter, Event, Resumed, Stopped, WriterConfig, finish_partial
from tests.peers.rtsp import shared_media
from tests.recorder.media import (
    CAMERA,
    decoded_frames,
    ffprobe_frames,
    file_digests,
    file_packets,
    packet_digest,
    synthetic_packets,
)

T0 = 1_735_732_800.0  # 2025-01-01T12:00:00Z


def record(
    root: Path, packets: list[Packet], config: WriterConfig, *, batch: int = 25, close: bool = True
) -> tuple[CameraWriter, list[Event]]:
    writer = CameraWriter(root, CAMERA, config)
    events: list[Event] = []
    for i in range(0, len(packets), batch):
        chunk = packets[i : i + batch]
        events += writer.write(chunk, chunk[-1].arrival)
    if close:
        events += writer.close(GapReason.GATEWAY_DOWN)
    return writer, events


def segments(events: list[Event]) -> list[Segment]:
    return [e for e in events if isinstance(e, Segment)]


def test_bframes_and_audio_every_packet_lands_in_playable_segments(tmp_path: Path) -> None:
    packets = file_packets_of_vtest()
    writer, events = record(tmp_path, packets, WriterConfig(segment_seconds=4))
    closed = segments(events)
    assert isinstance(events[0], Resumed) and events[0].at == packets[0].arrival
    assert isinstance(events[-1], Stopped) and events[-1].reason is GapReason.GATEWAY_DOWN
    assert len(closed) == 3  # the clip's keyframes are ~5 s apart: cut at each

    # Count and hash: every packet, in order, split at keyframes, nothing lost or altered.
    recorded: dict[str, list[str]] = {"video": [], "audio": []}
    for segment in closed:
        path = tmp_path / segment.path
        digests = file_digests(path)
        for kind in recorded:
            recorded[kind] += digests[kind]
        # Playable by ffprobe (every frame decoded, no complaint) and by PyAV.
        frames = ffprobe_frames(path)
        assert frames["video"] == len(digests["video"]) == decoded_frames(path)
        assert frames["audio"] == len(digests["audio"]) > 0
    for kind in recorded:
        assert recorded[kind] == [packet_digest(p) for p in packets if p.kind == kind]
    assert writer.stats.packets == len(packets) and writer.stats.skipped == 0

    # Wall-clock bounds: contiguous, each starting at its keyframe's arrival, named for them.
    keyframes = [p.arrival for p in packets if p.is_video_keyframe]
    assert [s.start for s in closed] == keyframes[: len(closed)]
    for before, after in itertools.pairwise(closed):
        assert before.end == after.start
    assert sum(s.duration for s in closed) == pytest.approx(13.64, abs=0.05)  # 341 frames
    for segment in closed:
        parsed = layout.parse_path(tmp_path, tmp_path / segment.path)
        assert parsed is not None and parsed.start == pytest.approx(segment.start, abs=0.001)
        # What the index stores matches what a fresh reading of the file finds.
        facts = mp4.probe(tmp_path / segment.path)
        assert facts is not None
        assert facts.keyframes == segment.keyframes and facts.packets == segment.packets
        assert facts.duration == pytest.approx(segment.duration, abs=0.001)
        assert facts.codec_key == segment.codec_key
        assert (facts.video_codec, facts.width, facts.height, facts.audio_codec) == (
            "h264",
            1280,
            720,
            "aac",
        )
        found = mp4.layout(tmp_path / segment.path)
        assert found is not None and found.closed and found.fragments >= segment.duration - 1
    assert not list(tmp_path.rglob("*.part"))

    # Lip sync: in every segment, sound sits where the camera put it relative to the picture.
    starts = [p for p in packets if p.is_video_keyframe][: len(closed)]
    for segment, keyframe in zip(closed, starts, strict=True):
        with av.open(str(tmp_path / segment.path)) as container:
            first_audio = next(
                pkt for pkt in container.demux(container.streams.audio[0]) if pkt.pts is not None
            )
            in_file = float(first_audio.pts * first_audio.time_base)
        source = next(
            p for p in packets if p.kind == "audio" and p.pts_seconds >= keyframe.pts_seconds
        )
        assert in_file == pytest.approx(source.pts_seconds - keyframe.pts_seconds, abs=0.03)


def test_crash_keeps_everything_up_to_the_last_complete_fragment(tmp_path: Path) -> None:
    packets = file_packets_of_vtest()[:400]  # ~5.8 s, inside the first segment
    live = tmp_path / "live"
    writer, _ = record(live, packets, WriterConfig(segment_seconds=60), close=False)
    partial = next(live.rglob("*.mp4.part"))
    # The process dies here: what the disk holds is the file as it is now, no trailer; and
    # the next fragment was torn mid-write.
    crashed = tmp_path / "crashed"
    copy = crashed / partial.relative_to(live)
    copy.parent.mkdir(parents=True)
    shutil.copyfile(partial, copy)
    with copy.open("ab") as fh:
        fh.write(b"\x00\x00\x10\x00moof" + b"\x00" * 100)
    segment = finish_partial(crashed, copy)
    writer.close(GapReason.GATEWAY_DOWN)

    assert segment is not None and segment.repaired
    path = crashed / segment.path
    video = file_digests(path)["video"]
    expected = [packet_digest(p) for p in packets if p.kind == "video"]
    assert video == expected[: len(video)]
    # Fragments are ~1 s and the writer muxed every packet: at most ~1 s is lost.
    assert 0 < len(expected) - len(video) <= 26
    assert ffprobe_frames(path)["video"] == len(video) == decoded_frames(path)
    assert segment.start == packets[0].arrival
    assert segment.end == pytest.approx(segment.start + segment.duration)
    assert not list(crashed.rglob("*.part"))


def test_new_segment_on_parameter_change_and_breaks(tmp_path: Path) -> None:
    normaliser = Normaliser()
    first = synthetic_packets(3, T0, normaliser=normaliser)
    # The camera is reconfigured: new resolution, a new SPS, same stream.
    second = synthetic_packets(2, T0 + 3, size=(640, 360), normaliser=normaliser)
    # It falls silent for 10 s, then comes back: a gap.
    third = synthetic_packets(2, T0 + 15, size=(640, 360), normaliser=normaliser)
    packets = first + second + third
    _, events = record(tmp_path, packets, WriterConfig(segment_seconds=60, gap_seconds=3))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Resumed", "Segment", "Segment", "Stopped", "Resumed", "Segment", "Stopped"]
    closed = segments(events)
    assert [(s.width, s.height) for s in closed] == [(320, 240), (640, 360), (640, 360)]
    assert closed[0].codec_key != closed[1].codec_key == closed[2].codec_key
    gap_start, gap_end = events[3], events[4]
    assert isinstance(gap_start, Stopped) and gap_start.reason is GapReason.CAMERA_OFFLINE
    assert isinstance(gap_end, Resumed)
    last_before = second[-1]
    assert gap_start.at == pytest.approx(last_before.arrival + 1 / 15)  # end of its last frame
    assert gap_end.at == third[0].arrival
    assert closed[1].end == gap_start.at and closed[2].start == gap_end.at


def test_lost_packets_break_the_segment_until_the_next_keyframe(tmp_path: Path) -> None:
    packets = synthetic_packets(4, T0)
    # The hub dropped 10 packets for this consumer, then resumed at a keyframe (30).
    delivered = packets[:20] + packets[30:]
    _, events = record(tmp_path, delivered, WriterConfig())
    stop = next(e for e in events if isinstance(e, Stopped))
    assert stop.reason is GapReason.PACKETS_LOST
    resumed = [e for e in events if isinstance(e, Resumed)]
    assert resumed[1].at == packets[30].arrival
    assert [s.packets for s in segments(events)] == [20, len(packets) - 30]


def file_packets_of_vtest() -> list[Packet]:
    return file_packets(shared_media("vtest.avi"), T0)
