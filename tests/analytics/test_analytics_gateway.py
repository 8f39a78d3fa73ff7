"""The gateway with its analytics worker process: recordings from the watch folder and from
the recorder's bus events, live cameras with induced faults (the demo source's ``fault=``),
results in the event log, on the bus, in the diagnosis and the metrics, over the real API."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from analytics_clips import ONSET, VTEST_RECIPES, make_fault

from gateway.bus import Event, RedisBus
from tests.inprocess import gateway_client, gateway_of
from tests.test_bus import redis_url

__all__ = ["redis_url"]  # the real Redis fixture of tests/test_bus.py

DEMO_ID = "11010500001320000001"
SILENT_ID = "11010600001320000002"
FILE_ID = "11010600001320000003"
DEMO = "demo://{name}?width=320&height=180&fps=10&gop=10&fault={fault}&fault_after=5&fault_for={length}"
CONFIG = f"""
hub: {{probe_interval: 3600, idle_stop_after: 5, open_timeout: 3, read_timeout: 3}}
demo: {{url: "{DEMO.format(name="black", fault="black", length=4)}"}}
regions: [{{code: "110106", name: Township B}}]
cameras:
  - {{id: "{SILENT_ID}", name: silent, class: B, region: "110106", owner_unit: test,
     sector: police, tags: [live],
     source: {{main_url: "{DEMO.format(name="silent", fault="silent", length=6)}"}}}}
  - {{id: "{FILE_ID}", name: recorded elsewhere, class: C, region: "110106", owner_unit: test,
     sector: police, source: {{main_url: "rtsp://127.0.0.1:9/nothing"}}}}
analytics:
  enabled: true
  live: {{mode: continuous, tags: [demo, live], signal_loss_after: 2}}
  watch_interval: 0.5
  settle_seconds: 0.5
"""


async def until(
    check: Callable[[], Awaitable[Any]], timeout: float = 30.0, every: float = 0.25
) -> Any:
    """Poll ``check`` until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(every)


async def events_of(http: httpx.AsyncClient, camera: str, kind: str) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/events", params={"camera": camera, "type": kind})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_recordings_and_live_faults_end_to_end(
    tmp_path: Path, vtest_base: Path, clip_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    watch = tmp_path / "watch"
    black_clip = make_fault(
        vtest_base, next(r for r in VTEST_RECIPES if r.name == "black"), clip_dir
    )
    async with gateway_client(tmp_path / "data", CONFIG + f"  watch_dir: {watch}\n") as http:
        gateway = gateway_of(http)
        messages: list[Event] = []

        async def listen() -> None:
            async for message in gateway.bus.subscribe(types={"black", "signal_loss"}):
                messages.append(message)

        listener = asyncio.ensure_future(listen())

        # (a) recordings: a corrupt file, then a real one with a fault, into the watch folder
        folder = watch / FILE_ID / "2025-01-01"
        folder.mkdir(parents=True)
        (folder / "broken.mp4").write_bytes(b"\x00" * 4096)
        await asyncio.sleep(0.01)  # a later change time: analysed after the broken one
        shutil.copy(black_clip, folder / "clip.mp4")
        (recorded,) = await until(lambda: events_of(http, FILE_ID, "black"))
        copied = (folder / "clip.mp4").stat().st_mtime  # its start: modification time - length
        start = datetime.fromisoformat(recorded["start"]).timestamp()
        assert abs(start - (copied - 8.0 + ONSET)) <= 2.0
        assert recorded["data"]["origin"] == "recording"
        assert recorded["data"]["segment"] == str(folder / "clip.mp4")
        thumbnail = await http.get(recorded["thumbnail"])
        assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"

        # (b) live: the demo camera goes black 5 s after it opens, for 4 s
        diagnosis = await until(lambda: _diagnosis_with(http, DEMO_ID, "black"), timeout=30)
        assert diagnosis["ok"] is False and diagnosis["sampled_live"] is True
        assert diagnosis["reference"] is not None  # learned from the good first seconds
        metrics = (await http.get("/metrics")).text
        assert (
            f'sharpeyes_camera_fault{{camera="{DEMO_ID}",region="110105",fault="black"}} 1'
            in metrics
        )
        quality = (await http.get("/api/v1/diagnosis")).json()
        assert {"camera": DEMO_ID, "faults": ["black"]} in quality["faulty"]
        county = next(r for r in quality["regions"] if r["code"] == "110105")
        assert county["online"] == 1 and county["intact"] == 0 and county["intact_ratio"] == 0.0

        (live,) = await until(lambda: _ended(http, DEMO_ID, "black"), timeout=20)
        black_messages = [m for m in messages if m.camera == DEMO_ID and m.type == "black"]
        assert [(m.data["event_id"], m.end is None) for m in black_messages] == [
            (live["id"], True),  # published when it began ...
            (live["id"], False),  # ... and again when it ended: the same event
        ]
        assert 3.0 <= black_messages[1].end - black_messages[1].start <= 7.0  # type: ignore[operator]

        # (c) live signal loss: the second camera sends nothing for 6 s
        await until(lambda: _ended(http, SILENT_ID, "signal_loss"), timeout=25)
        loss = [m for m in messages if m.camera == SILENT_ID and m.type == "signal_loss"]
        assert [m.end is None for m in loss] == [True, False]
        assert 4.0 <= loss[1].end - loss[1].start <= 9.0  # type: ignore[operator]

        # the scene reference: its picture, and a relearn on request
        reference = await http.get(f"/api/v1/cameras/{DEMO_ID}/diagnosis/reference.jpg")
        assert reference.status_code == 200 and reference.content[:2] == b"\xff\xd8"
        relearn = await http.post(f"/api/v1/cameras/{DEMO_ID}/diagnosis/reference")
        assert relearn.status_code == 202
        await until(lambda: _no_reference(http, DEMO_ID), timeout=10)
        unknown = await http.get("/api/v1/cameras/34150200001320000099/diagnosis")
        assert unknown.status_code == 404
        listener.cancel()
        stats = gateway.analytics.segments
        assert (stats.analysed, stats.failed) == (1, 1)
        feed = gateway.analytics.sampler.stats
        assert feed.batches > 0 and feed.dropped == 0
    # the worker told what was wrong with the broken file, and went on
    err = capfd.readouterr().err
    assert "broken.mp4" in err and "corrupt_media" in err and "going on" in err
    assert "analytics worker 0 stopped" in err


async def _diagnosis_with(http: httpx.AsyncClient, camera: str, fault: str) -> Any:
    body = (await http.get(f"/api/v1/cameras/{camera}/diagnosis")).json()
    return body if fault in body["faults"] else None


async def _ended(http: httpx.AsyncClient, camera: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in await events_of(http, camera, kind) if e["end"] is not None]


async def _no_reference(http: httpx.AsyncClient, camera: str) -> bool:
    body = (await http.get(f"/api/v1/cameras/{camera}/diagnosis")).json()
    return body["reference"] is None


async def test_recorder_segments_over_the_redis_bus(
    tmp_path: Path, vtest_base: Path, clip_dir: Path, redis_url: str
) -> None:
    clip = make_fault(vtest_base, next(r for r in VTEST_RECIPES if r.name == "frozen"), clip_dir)
    # No live sampling here: only what the (simulated) recorder announces.
    text = CONFIG.replace("mode: continuous", "mode: off") + f'redis_url: "{redis_url}"\n'
    recorder = RedisBus(redis_url)  # another node's recorder, say
    messages = recorder.subscribe(types={"frozen"})
    try:
        async with gateway_client(tmp_path / "data", text) as http:
            waiter = asyncio.ensure_future(anext(messages))
            await asyncio.sleep(0.5)  # the gateway's subscription reads from "now"
            start = time.time() - 60.0
            closed = {"path": str(clip), "camera": FILE_ID, "start": start, "end": start + 8.0}
            await recorder.publish(
                Event(type="segment_closed", source="recorder", camera=FILE_ID, data=closed)
            )
            message = await asyncio.wait_for(waiter, 30)
            assert message.camera == FILE_ID and message.end is None
            assert abs(message.start - (start + ONSET)) <= 2.0
            (logged,) = await events_of(http, FILE_ID, "frozen")
            assert logged["id"] == message.data["event_id"]
    finally:
        await recorder.close()
