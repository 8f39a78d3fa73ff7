"""The recorder behind the hub, recording real RTSP cameras (GStreamer's RTSP server)."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from gateway.hub.packet import Packet
from recorder import mp4
from recorder.index import GapReason, Segment
from recorder.service import CameraStatus, Recorder
from tests.peers.rtsp import SHARED_MEDIA, RtspServer
from tests.recorder.harness import attach, camera, eventually, recording
from tests.recorder.media import decoded_frames, ffprobe_frames, file_digests, packet_digest

CAM = "34010200001320000001"
VTEST = "34010200001320000002"


async def check_recorded(
    recorder: Recorder, camera_id: str, delivered: list[Packet], stopped_at: float
) -> list[Segment]:
    """Every packet the hub delivered before ``stopped_at`` (from the first keyframe) is in
    the camera's segments, in order and bit-exact; files play and match the index."""
    segments = await recorder.index.segments(camera_id, 0, time.time() + 60)
    assert len(segments) >= 2
    recorded: list[str] = []
    for segment in segments:
        path = recorder.path_of(segment)
        digests = file_digests(path)["video"]
        recorded += digests
        assert ffprobe_frames(path)["video"] == len(digests) == decoded_frames(path)
        facts = mp4.probe(path)
        assert facts is not None and not segment.repaired
        assert (facts.packets, facts.keyframes, facts.codec_key) == (
            segment.packets,
            segment.keyframes,
            segment.codec_key,
        )
        assert facts.duration == pytest.approx(segment.duration, abs=0.001)
        assert path.stat().st_size == segment.bytes
    first = next(i for i, p in enumerate(delivered) if p.is_video_keyframe)
    assert first == 0  # both consumers started from the hub's cached keyframe
    expected = [packet_digest(p) for p in delivered if p.arrival < stopped_at]
    assert recorded[: len(expected)] == expected
    assert len(recorded) <= len([p for p in delivered if p.kind == "video"])
    # Contiguous, each starting on a keyframe, and the durations add up to the footage.
    for before, after in itertools.pairwise(segments):
        assert before.end == after.start
    assert all(s.keyframes and s.keyframes[0] < 0.1 for s in segments)
    total = sum(s.duration for s in segments)
    last = delivered[len(recorded) - 1]
    span = float((last.dts - delivered[0].dts) * last.codec.time_base)
    assert total == pytest.approx(span + 1 / 25, abs=0.05)
    return segments


async def test_records_real_rtsp_cameras_bit_exact(tmp_path: Path, rtsp_server: RtspServer) -> None:
    cameras = [camera(CAM, rtsp_server.url("/cam"))]
    if (SHARED_MEDIA / "vtest.avi").is_file():  # real footage, High profile with B-frames
        cameras.append(camera(VTEST, rtsp_server.url("/vtest")))
    async with recording(tmp_path) as (hub, recorder):
        collectors = [await attach(hub, recorder, c) for c in cameras]
        await eventually(
            lambda: all(status(recorder, c.id).segments >= 2 for c in cameras),
            25,
            "two closed segments per camera",
        )
        await asyncio.sleep(0.5)  # mid-segment
        stopped_at = time.time()
        for cam in cameras:
            now = status(recorder, cam.id)
            assert now.dropped == 0 and now.errors == 0
            await recorder.remove(cam.id)  # writes what is queued, closes the segment
        for cam, collector in zip(cameras, collectors, strict=True):
            delivered = await collector.close()
            segments = await check_recorded(recorder, cam.id, delivered, stopped_at)
            gaps = await recorder.index.gaps(cam.id, 0, time.time() + 60)
            assert [(g.reason, g.start, g.end) for g in gaps] == [
                (GapReason.RECORDING_OFF, segments[-1].end, None)
            ]
            if cam.id == VTEST:
                assert any(p.pts != p.dts for p in delivered)  # B-frames really were there
        # Each closed segment was announced on the bus (the analytics worker scans them).
        assert recorder.bus is not None
        announced = recorder.bus.subscribe(types={"segment_closed"}, after="0-0")
        indexed = [s for c in cameras for s in await recorder.index.segments(c.id, 0, time.time())]
        seen = [await asyncio.wait_for(anext(announced), 5) for _ in indexed]
        assert sorted((e.camera, e.data["path"], e.start, e.end) for e in seen) == sorted(
            (s.camera_id, s.path, s.start, s.end) for s in indexed
        )


async def test_camera_goes_away_and_comes_back_one_gap(tmp_path: Path, make_rtsp_server) -> None:  # type: ignore[no-untyped-def]
    server: RtspServer = make_rtsp_server({"/cam": "test"})
    async with recording(tmp_path) as (hub, recorder):
        await attach(hub, recorder, camera(CAM, server.url("/cam")))
        await eventually(lambda: status(recorder, CAM).segments >= 1, 20, "a first segment")
        before_stop = time.time()
        await asyncio.to_thread(server.stop)
        stopped = time.time()
        await eventually(
            lambda: status(recorder, CAM).state == "waiting", 10, "the segment to close"
        )
        await asyncio.sleep(2.0)  # the camera stays away; the hub keeps retrying
        await asyncio.to_thread(server.start)
        restarted = time.time()
        await eventually(
            lambda: status(recorder, CAM).state == "recording", 20, "recording to resume"
        )
        resumed_seen = time.time()
        segments_before = status(recorder, CAM).segments
        await eventually(
            lambda: status(recorder, CAM).segments > segments_before, 20, "a segment after"
        )
        await recorder.remove(CAM)
        end = time.time()

        gaps = await recorder.index.gaps(CAM, 0, end + 60)
        offline = [g for g in gaps if g.reason is GapReason.CAMERA_OFFLINE]
        assert len(offline) == 1, gaps
        gap = offline[0]
        assert gap.end is not None
        # From the end of the last frame before the camera went away to the first keyframe
        # after it came back.
        assert before_stop - 1.0 < gap.start <= stopped + 0.1
        assert restarted < gap.end <= resumed_seen
        segments = await recorder.index.segments(CAM, 0, end + 60)
        ends = {s.end for s in segments}
        starts = {s.start for s in segments}
        assert gap.start in ends and gap.end in starts
        assert not [s for s in segments if s.start < gap.end and s.end > gap.start]
        assert [g.reason for g in gaps] == [GapReason.CAMERA_OFFLINE, GapReason.RECORDING_OFF]


def status(recorder: Recorder, camera_id: str) -> CameraStatus:
    found = recorder.recording(camera_id)
    assert found is not None, f"camera {camera_id} is not being recorded"
    return found
