"""gateway/web/alarms.js in headless Debian Chromium (Playwright) on the wall page, against
the gateway over real HTTP: the pop-up, its linked cameras, the sound, acknowledge, close."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import settings as config
from tests.alarms.box import Box
from tests.alarms.harness import Api, ServerThread
from tests.credentials import ADMIN_TOKEN

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian chromium is not installed", allow_module_level=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CAM = "34150200001320000001"
BOX = "34150200001340000001"
SECRET = "wall-test-box-secret-0123"
CONFIG = f"""
hub: {{probe_interval: 3600, idle_stop_after: 5}}
demo: {{id: "{CAM}", region: "341502", region_name: 金安区,
        url: "demo://wall?width=320&height=180&fps=5"}}
alarms: {{stream_keepalive: 1}}
"""


@pytest.fixture
def wall(tmp_path: Path) -> Iterator[tuple[ServerThread, Api, Any]]:
    settings = config.parse(CONFIG, environ={})
    settings.data_dir = tmp_path / "data"
    with ServerThread(settings) as server, sync_api.sync_playwright() as pw:
        operator = Api(server.base_url, ADMIN_TOKEN).user("duty", "operator", ["341502"])
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(
                viewport={"width": 1280, "height": 720},
                extra_http_headers={"Authorization": f"Bearer {operator.token}"},
            )
            yield server, operator, page
        finally:
            browser.close()


def test_alarm_pops_up_with_its_cameras_and_sound(wall: tuple[ServerThread, Api, Any]) -> None:
    server, operator, page = wall
    device = {"id": BOX, "name": "一键报警", "school": "椿树小学", "region": "341502",
              "location": "南门门卫室", "cameras": [CAM], "phones": ["0564-3336110"],
              "secret": SECRET}  # fmt: skip
    assert Api(server.base_url, ADMIN_TOKEN).post("/api/v1/alarm-devices", json=device).is_success
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.base_url + "/wall/")
    page.locator(f'.camera[data-camera="{CAM}"]').wait_for(timeout=15000)
    # The wall starts alarms.js itself (index.html), with its own showCameras.
    page.wait_for_function("document.getElementById('alarm-panel') !== null")
    page.evaluate("wall.tiles.forEach((t) => t.assign(null))")
    first_tile = "document.querySelector('#wall .tile').dataset.camera || null"

    box = Box(server.base_url, BOX, SECRET)
    alarm_id = box.send("emergency").json()["event_id"]
    card = page.locator(f"#alarm-{alarm_id}")
    card.wait_for(timeout=10000)
    assert "紧急报警" in card.inner_text() and "椿树小学 · 南门门卫室" in card.inner_text()
    # The linked camera is put on the wall at once, in the first tile.
    page.wait_for_function(f"({first_tile}) === '{CAM}'", timeout=5000)
    # The snapshot taken at the alarm arrives with the linkage.
    page.wait_for_function(
        f"(() => {{ const i = document.querySelector('#alarm-{alarm_id} img');"
        " return i && i.complete && i.naturalWidth === 320; })()",
        timeout=15000,
    )
    # Sound needs a user gesture first: the pop-up asks for one, once.
    sound = page.locator("#alarm-sound")
    sound.wait_for(timeout=5000)
    sound.click()
    assert page.locator("#alarm-sound").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-alarm.png"))

    card.get_by_role("button", name="确认 Acknowledge").click()
    page.wait_for_selector(f"#alarm-{alarm_id}.acknowledged", timeout=5000)
    card.locator("textarea").fill("已出警, 误触")
    card.get_by_role("button", name="结束 Close").click()
    card.wait_for(state="detached", timeout=5000)
    closed = operator.get(f"/api/v1/alarms/{alarm_id}").json()
    assert closed["state"] == "closed" and closed["data"]["disposition"] == "已出警, 误触"
    assert closed["data"]["acknowledged_by"] == "duty"

    page.evaluate("wall.tiles.forEach((t) => t.assign(null))")
    drill = box.send("test").json()["event_id"]
    page.locator(f"#alarm-{drill}.test").wait_for(timeout=10000)
    assert "【测试 TEST】" in page.locator(f"#alarm-{drill}").inner_text()
    assert page.evaluate(first_tile) is None  # a drill does not take over the wall
    assert not errors, errors
