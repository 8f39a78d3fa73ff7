"""End to end: the real ``sharpeyes serve`` records a real RTSP camera, is killed with
SIGKILL mid-segment, restarts, and serves the footage over HTTP and on the command line."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import av
import pytest

from tests.e2e.process import SHARPEYES, GatewayProcess
from tests.peers.rtsp import RtspServer
from tests.recorder.media import ffprobe_frames

pytestmark = pytest.mark.e2e
CAM = "34010200001320000001"
API = f"/api/v1/cameras/{CAM}"


def config(url: str) -> str:
    return f"""
demo: {{enabled: false}}
hub: {{open_timeout: 5, read_timeout: 5}}
recorder: {{segment_seconds: 3, batch_seconds: 0.1}}
regions: [{{code: "340102", name: 测试区}}]
cameras:
  - id: "{CAM}"
    name: gate
    class: A
    region: "340102"
    owner_unit: police
    sector: police
    recording: continuous
    source: {{main_url: "{url}"}}
"""


def listing(gw: GatewayProcess) -> dict:  # type: ignore[type-arg]
    response = gw.get(f"{API}/recordings", params={"start": "0", "end": str(time.time() + 60)})
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


def epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def test_record_kill_restart_and_serve(tmp_path: Path, rtsp_server: RtspServer) -> None:
    gw = GatewayProcess(tmp_path, config(rtsp_server.url("/cam"))).start()
    try:
        body = gw.wait_for(
            f"{API}/recordings?start=0", lambda r: len(r.json()["segments"]) >= 2, 30
        ).json()
        assert body["recording"]["state"] == "recording" and body["gaps"] == []
        first, second = body["segments"][:2]
        assert first["end"] == second["start"] and first["video_codec"] == "h264"
        check_http(gw, tmp_path, first, second)

        # Kill -9 in the middle of a segment.
        while True:
            current = listing(gw)["recording"]["segment_start"]
            if current and time.time() - epoch(current) > 1.8:
                break
            time.sleep(0.1)
        killed_at = time.time()
        gw.kill()
    finally:
        gw.kill()
    data = tmp_path / "data"
    assert len(list((data / "recordings").rglob("*.mp4.part"))) == 1

    with GatewayProcess(tmp_path, config(rtsp_server.url("/cam"))) as again:
        body = again.wait_for(
            f"{API}/recordings?start=0",
            lambda r: any(epoch(s["start"]) > killed_at for s in r.json()["segments"]),
            30,
        ).json()
        repaired = [s for s in body["segments"] if s["repaired"]]
        assert len(repaired) == 1
        lost = killed_at - epoch(repaired[0]["end"])
        # At most the fragment in progress (about 1 s) and the batch in flight are lost.
        assert 0 < lost < 1.6, lost
        after = next(s for s in body["segments"] if epoch(s["start"]) > killed_at)
        gaps = body["gaps"]
        assert [(g["reason"], g["start"], g["end"]) for g in gaps] == [
            ("gateway_down", repaired[0]["end"], after["start"])
        ]
        assert "repaired" in again.log
        path = data / "recordings"
        segment = again.get(f"{API}/recordings/{repaired[0]['id']}.mp4")
        (tmp_path / "repaired.mp4").write_bytes(segment.content)
        frames = ffprobe_frames(tmp_path / "repaired.mp4")["video"]
        assert frames >= 20 and frames == pytest.approx(repaired[0]["duration"] * 25, abs=1)
        start, end = body["segments"][0]["start"], after["end"]
        assert again.stop()
    assert len(list(path.rglob("*.mp4.part"))) == 0

    # The command line exports across the crash (a gap inside the range) with the gateway down.
    out = tmp_path / "evidence.mp4"
    run = subprocess.run(
        [
            str(SHARPEYES),
            "export",
            CAM,
            start,
            end,
            str(out),
            "--data",
            str(data),
            "--config",
            str(tmp_path / "sharpeyes.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "100%" in run.stderr and "segment(s)" in run.stderr
    assert ffprobe_frames(out)["video"] > 50
    with av.open(str(out)) as container:
        first_packet = next(p for p in container.demux(video=0) if p.size)
        assert first_packet.is_keyframe
    # The command line's export is in the audit trail, and the chain still verifies.
    verify = subprocess.run(
        [str(SHARPEYES), "audit", "verify", "--data", str(data)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    with sqlite3.connect(data / "security.sqlite3") as db:
        rows = db.execute("SELECT * FROM audit ORDER BY rowid DESC LIMIT 1").fetchall()
    assert "export" in str(rows[0]) and CAM in str(rows[0]) and "cli" in str(rows[0])


def check_http(gw: GatewayProcess, tmp_path: Path, first: dict, second: dict) -> None:  # type: ignore[type-arg]
    # One segment file, with byte ranges (players and HLS need them).
    whole = gw.get(first["url"])
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    part = gw.get(first["url"], headers={**gw.headers, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]

    # HLS VOD over the segments: init section and fragments as byte ranges of the files.
    playlist = gw.get(f"{API}/recordings.m3u8", params={"start": first["start"]})
    assert playlist.status_code == 200
    lines = playlist.text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "#EXT-X-ENDLIST"
    assert f"recordings/{first['id']}.mp4" in lines and any("EXT-X-MAP" in ln for ln in lines)
    byterange = next(ln for ln in lines if ln.startswith("#EXT-X-BYTERANGE:"))
    length, offset = map(int, byterange.split(":")[1].split("@"))
    media = gw.get(
        first["url"], headers={**gw.headers, "Range": f"bytes={offset}-{offset + length - 1}"}
    )
    assert media.status_code == 206 and media.content[4:8] == b"moof"
    # A real HLS client (FFmpeg's) reads the two segments through the playlist, every packet.
    url = f"{gw.base_url}{API}/recordings.m3u8?start={first['start']}&end={second['end']}"
    auth = f"Authorization: {gw.headers['Authorization']}\r\n"
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-headers",
            auth,
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and not probe.stderr, probe.stderr
    assert int(probe.stdout.split()[0]) == first["packets"] + second["packets"]

    # Export across the boundary of the two segments; a player's range requests get the
    # same bytes as the whole file.
    start = epoch(first["start"]) + 1.5
    end = epoch(second["start"]) + 1.5
    params = {"start": str(start), "end": str(end)}
    exported = gw.get(f"{API}/export.mp4", params=params)
    assert exported.status_code == 200, exported.text
    assert epoch(exported.headers["x-recording-start"]) == pytest.approx(start, abs=0.001)
    assert epoch(exported.headers["x-recording-keyframe"]) <= start
    tail = gw.get(
        f"{API}/export.mp4", params=params, headers={**gw.headers, "Range": "bytes=-1000"}
    )
    assert tail.status_code == 206 and tail.content == exported.content[-1000:]
    (tmp_path / "export.mp4").write_bytes(exported.content)
    assert ffprobe_frames(tmp_path / "export.mp4")["video"] == pytest.approx(75, abs=3)

    # Times without an offset are refused rather than guessed.
    naive = gw.get(f"{API}/export.mp4", params={"start": "2025-01-01T12:00:00", "end": "1"})
    assert naive.status_code == 422 and naive.json()["field"] == "start"

    # Evidence holds: created, listed, released (and still listed as released).
    hold = gw.post(
        f"{API}/holds",
        json={"start": first["start"], "end": second["end"], "reason": "case 2025-117"},
    )
    assert hold.status_code == 201, hold.text
    held = hold.json()
    assert [h["id"] for h in gw.get(f"{API}/holds").json()] == [held["id"]]
    released = gw.delete(f"{API}/holds/{held['id']}")
    assert released.status_code == 200 and released.json()["released_at"]
    assert gw.get(f"{API}/holds").json() == []
    assert len(gw.get(f"{API}/holds", params={"released": "true"}).json()) == 1
    status = gw.get("/api/v1/recorder").json()
    assert status["disk"]["state"] == "ok" and status["cameras"][0]["camera_id"] == CAM
    metrics = gw.get("/metrics").text
    assert 'sharpeyes_recorder_disk_state{state="ok"} 1' in metrics
    assert f'sharpeyes_recorder_camera_recording{{camera="{CAM}"}} 1' in metrics
