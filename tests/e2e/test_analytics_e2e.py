"""End to end: the real ``sharpeyes serve`` process with its analytics worker, a demo camera
that goes black and a real RTSP camera that falls silent; a crash and two restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.process import GatewayProcess
from tests.peers.rtsp import RtspServer

pytestmark = pytest.mark.e2e

DEMO_ID = "11010500001320000001"
RTSP_ID = "34150200001320000001"


def config(rtsp_url: str) -> str:
    return f"""
hub: {{open_timeout: 4, read_timeout: 4, probe_interval: 3600}}
demo: {{url: "demo://e2e?width=320&height=180&fps=10&gop=10&fault=black&fault_after=5"}}
regions: [{{code: "341502", name: 金安区}}]
cameras:
  - {{id: "{RTSP_ID}", name: gate, class: B, region: "341502", owner_unit: school,
     sector: education, source: {{main_url: "{rtsp_url}"}}}}
analytics: {{enabled: true, live: {{mode: continuous, signal_loss_after: 2}}}}
"""


def workers(gw: GatewayProcess) -> list[psutil.Process]:
    """The gateway's analytics worker processes."""
    assert gw.proc is not None
    children = psutil.Process(gw.proc.pid).children()
    return [c for c in children if "spawn_main" in " ".join(c.cmdline())]


def faults(camera: str, fault: str) -> Callable[[httpx.Response], bool]:
    return lambda r: r.status_code == 200 and fault in r.json()["faults"]


def events(gw: GatewayProcess, camera: str, kind: str) -> list[dict[str, Any]]:
    response = gw.get("/api/v1/events", params={"camera": camera, "type": kind})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_live_faults_survive_a_crash_and_end_cleanly(
    tmp_path: Path, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    camera = make_rtsp_server({"/cam": "test,width=320,height=180,fps=10"})
    text = config(camera.url("/cam"))
    with GatewayProcess(tmp_path, text) as gw:
        (worker,) = workers(gw)
        # The demo camera turns black 5 s after it opens: the diagnosis says so at once.
        gw.wait_for(f"/api/v1/cameras/{DEMO_ID}/diagnosis", faults(DEMO_ID, "black"), 30)
        (black,) = events(gw, DEMO_ID, "black")
        assert black["end"] is None and black["data"]["origin"] == "live"
        picture = gw.get(black["thumbnail"])
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        assert gw.get("/wall/health.html").status_code == 200
        metrics = gw.get("/metrics").text
        assert f'camera="{DEMO_ID}",region="110105",fault="black"}} 1' in metrics

        # The RTSP camera's network stalls: a signal loss within seconds, ended when it returns.
        gw.wait_for(f"/api/v1/cameras/{RTSP_ID}/diagnosis", lambda r: r.json()["analysed_at"])
        camera.freeze()
        try:
            gw.wait_for(f"/api/v1/cameras/{RTSP_ID}/diagnosis", faults(RTSP_ID, "signal_loss"), 15)
        finally:
            camera.thaw()
        gw.wait_for(
            f"/api/v1/events?camera={RTSP_ID}&type=signal_loss",
            lambda r: r.json()["items"] and r.json()["items"][0]["end"] is not None,
            30,
        )

        # A crash: the worker notices its gateway is gone and exits by itself.
        gw.kill()
        psutil.wait_procs([worker], timeout=10)
        assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE

    with GatewayProcess(tmp_path, text) as again:
        # What the crash left open ends when the gateway is back, marked as interrupted.
        (before,) = [e for e in events(again, DEMO_ID, "black") if e["id"] == black["id"]]
        assert before["end"] is not None and before["data"]["interrupted"] is True
        # The camera is still black: a new event begins, from the stored reference.
        again.wait_for(
            f"/api/v1/events?camera={DEMO_ID}&type=black",
            lambda r: any(e["end"] is None for e in r.json()["items"]),
            30,
        )
        diagnosis = again.get(f"/api/v1/cameras/{DEMO_ID}/diagnosis").json()
        assert diagnosis["reference"] is not None
        assert again.stop()  # SIGTERM: the worker ends its analyses, then the gateway stops
    assert "analytics worker 0 stopped" in again.log

    with GatewayProcess(tmp_path, text.replace("enabled: true", "enabled: false")) as third:
        # A clean stop left nothing open: every black event has ended, none interrupted twice.
        black_events = events(third, DEMO_ID, "black")
        assert len(black_events) == 2 and all(e["end"] is not None for e in black_events)
        assert "interrupted" not in black_events[0]["data"]
        assert workers(third) == []  # analytics disabled: no worker process
        assert third.stop()
