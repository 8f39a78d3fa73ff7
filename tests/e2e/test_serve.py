"""End to end: the real ``sharpeyes serve`` process against a real RTSP camera, over HTTP."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.e2e.process import GatewayProcess
from tests.peers.rtsp import RtspServer

pytestmark = pytest.mark.e2e

DEMO_ID = "11010500001320000001"
GOOD_ID = "34150200001320000001"
BAD_ID = "34150200001320000002"


def state(camera_id: str, wanted: str):  # type: ignore[no-untyped-def]
    return lambda r: r.status_code == 200 and r.json()["status"]["state"] == wanted


def test_default_gateway_shows_the_demo_camera(tmp_path: Path) -> None:
    with GatewayProcess(tmp_path) as gw:
        body = gw.wait_for(f"/api/v1/cameras/{DEMO_ID}", state(DEMO_ID, "online")).json()
        assert body["status"]["codec"] == "h264" and body["tags"] == ["demo"]
        snap = gw.get(f"/api/v1/cameras/{DEMO_ID}/snapshot.jpg")
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
        assert "sharpeyes_camera_online" in gw.get("/metrics").text
        assert gw.get("/openapi.json").status_code == 200
        assert gw.stop()
    assert (tmp_path / "data" / "catalog.sqlite3").is_file()


def test_gateway_against_real_rtsp_camera(tmp_path: Path, rtsp_server: RtspServer) -> None:
    password = rtsp_server.password
    assert password is not None
    base = rtsp_server.url("/auth")
    config = f"""
demo: {{enabled: false}}
hub: {{open_timeout: 4, read_timeout: 4, probe_interval: 5}}
regions:
  - {{code: "341502", name: 金安区}}
  - {{code: "341502001", name: 城北街道}}
cameras:
  - id: "{GOOD_ID}"
    name: right password
    class: B
    region: "341502001"
    owner_unit: 椿树小学
    sector: education
    source: {{main_url: "{base}", username: admin, password: "{password}"}}
  - id: "{BAD_ID}"
    name: wrong password
    class: C
    region: "341502001"
    owner_unit: shop
    sector: commerce
    source: {{main_url: "{base}", username: admin, password: "Wrong-{password}"}}
"""
    with GatewayProcess(tmp_path, config) as gw:
        good = gw.wait_for(f"/api/v1/cameras/{GOOD_ID}", state(GOOD_ID, "online"), 30).json()
        assert (good["status"]["width"], good["status"]["height"]) == (640, 360)
        bad = gw.wait_for(f"/api/v1/cameras/{BAD_ID}", state(BAD_ID, "offline"), 30).json()
        assert bad["status"]["reason"] == "auth_failed"
        snap = gw.get(f"/api/v1/cameras/{GOOD_ID}/snapshot.jpg")
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"

        # Onboard one more camera through the API, with credentials in the URL.
        url = rtsp_server.url("/cam").replace("rtsp://", f"rtsp://admin:{password}x@")
        r = gw.post(
            "/api/v1/cameras",
            json={
                "id": "34150200001320000003",
                "name": "api camera",
                "class": "A",
                "region": "341502",
                "owner_unit": "police",
                "sector": "police",
                "source": {"main_url": url},
            },
        )
        assert r.status_code == 201, r.text
        gw.wait_for("/api/v1/cameras/34150200001320000003", state("", "online"), 30)

        tree = gw.get("/api/v1/regions").json()
        assert tree[0]["cameras"] == 3 and tree[0]["online"] == 2
        everything = [
            gw.get(p).text
            for p in ("/api/v1/cameras", f"/api/v1/cameras/{BAD_ID}", "/metrics", "/api/v1/regions")
        ]
        assert gw.stop()
    for text in [*everything, gw.log]:
        assert password not in text
    assert "auth_failed" in gw.log  # the failure is logged, without the secret


def test_sigint_and_restart_keep_the_catalog(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path).start()
    r = gw.post("/api/v1/regions", json={"code": "341502", "name": "金安区"})
    assert r.status_code == 201
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGINT)
    gw.proc.wait(15)
    started = time.monotonic()
    with GatewayProcess(tmp_path) as again:
        codes = [n["code"] for n in again.get("/api/v1/regions").json()]
        assert "341502" in codes
    assert time.monotonic() - started < 30


def test_bad_config_is_refused_with_field_and_line(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path, "server:\n  port: 0\n")
    with pytest.raises(RuntimeError, match=r"sharpeyes.yaml:2: server.port"):
        gw.start(timeout=15)
