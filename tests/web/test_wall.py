"""The video wall in headless Debian Chromium (Playwright), against the real gateway process
pieces: uvicorn on 127.0.0.1, the demo encoder, a camera that refuses connections."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gateway import settings as config
from gateway.app import create_app
from tests.credentials import ADMIN_HEADERS, LOOPBACK
from tests.peers.ports import free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
DEMO_ID = "11010500001320000001"
OFFLINE_ID = "11010500001320000009"
# On loopback Chromium needs these two (see shared/peers/README.md): its own 127.0.0.1
# candidate, and real addresses instead of mDNS names.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

playwright_api = pytest.importorskip("playwright.async_api")
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian chromium is not installed", allow_module_level=True)


@asynccontextmanager
async def gateway_server(
    data_dir: Path, cameras: str = "", sections: str = ""
) -> AsyncIterator[tuple[str, FastAPI]]:
    """``cameras``: more YAML entries of the cameras list; ``sections``: more YAML sections."""
    closed = free_port()  # nothing listens here: the camera refuses connections
    settings = config.parse(
        f"""
hub: {{probe_interval: 3600, idle_stop_after: 5, open_timeout: 3, read_timeout: 3}}
{LOOPBACK}relay: {{ice: {{host_addresses: ["127.0.0.1"]}}, start_timeout: 8}}
demo: {{url: "demo://wall?width=640&height=360&fps=25&gop=100"}}
regions: [{{code: "110106", name: "Township B"}}]
cameras:
  - {{id: "{OFFLINE_ID}", name: "North gate", class: B, region: "110106", owner_unit: "test",
     sector: police, source: {{main_url: "rtsp://127.0.0.1:{closed}/stream"}}}}
{cameras}"""
        + LOOPBACK
        + sections,
        environ={},
    )
    settings.data_dir = data_dir
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def decoded_frames(page: object, index: int) -> int:
    frames: int = await page.evaluate(  # type: ignore[attr-defined]
        "(i) => document.querySelectorAll('.tile video')[i].getVideoPlaybackQuality()"
        ".totalVideoFrames",
        index,
    )
    return frames


async def operator(base: str) -> tuple[str, str]:
    """An operator account with a password, made by the suite's admin through the API."""
    password = secrets.token_urlsafe(16)
    async with httpx.AsyncClient(base_url=base, headers=ADMIN_HEADERS) as http:
        response = await http.post(
            "/api/v1/users", json={"username": "wall", "role": "operator", "password": password}
        )
        assert response.status_code == 201, response.text
    return "wall", password


async def sign_in(page: object, base: str) -> None:
    """As an operator would: the wall sends a visitor without a session to the login page,
    and back after it."""
    username, password = await operator(base)
    await page.goto(base + "/", timeout=15000)  # type: ignore[attr-defined]
    await page.wait_for_url("**/login?next=*", timeout=15000)  # type: ignore[attr-defined]
    await page.fill("#username", username)  # type: ignore[attr-defined]
    await page.fill("#password", password)  # type: ignore[attr-defined]
    await page.click("button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_url("**/wall/", timeout=15000)  # type: ignore[attr-defined]


async def test_wall_plays_and_shows_offline_reason(tmp_path: Path) -> None:
    async with (
        gateway_server(tmp_path / "data") as (base, app),
        playwright_api.async_playwright() as pw,
    ):
        # Playwright gives the browser a fresh temporary profile of its own.
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            # As an operator would: no token, the login page, then a session cookie (which
            # the WHEP offers and DELETEs must also carry, same-origin).
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # Not signed in: the wall sends the operator to the login page, and back.
            await sign_in(page, base)
            # The tree lists both cameras under their regions, with status and class.
            demo_row = page.locator(f'.camera[data-camera="{DEMO_ID}"]')
            offline_row = page.locator(f'.camera[data-camera="{OFFLINE_ID}"]')
            await offline_row.locator(".dot.offline").wait_for(timeout=15000)
            assert await offline_row.locator(".badge").inner_text() == "二类"
            assert await offline_row.locator(".why").inner_text() == "refused"
            assert await page.locator('details[data-region="110106"]').count() == 1

            await demo_row.click()  # into tile 0 (selected), then tile 1 is selected
            started = time.monotonic()
            await page.wait_for_function(
                "document.querySelectorAll('.tile video')[0]"
                ".getVideoPlaybackQuality().totalVideoFrames > 0",
                timeout=15000,
            )
            first_frame = time.monotonic() - started
            await offline_row.click()  # into tile 1
            await asyncio.sleep(1)  # past the replayed GOP: count live frames
            before, t0 = await decoded_frames(page, 0), time.monotonic()
            await asyncio.sleep(3)
            rate = (await decoded_frames(page, 0) - before) / (time.monotonic() - t0)
            assert 20 <= rate <= 30, f"the live tile decodes {rate:.1f} fps from a 25 fps camera"

            status = page.locator(".tile").nth(1).locator(".status")
            await page.wait_for_function(
                "document.querySelectorAll('.tile .status')[1].textContent.includes('refused')",
                timeout=15000,
            )
            assert "offline" in await status.inner_text()
            assert await page.locator(".tile").nth(0).get_attribute("class") == "tile playing"

            shot = tmp_path / "wall.png"
            await page.screenshot(path=str(shot))
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(shot, ARTIFACTS / "wall.png")

            await page.locator(".tile").nth(0).dblclick()  # enlarge
            assert await page.locator("#wall.enlarged .tile.big").count() == 1
            await page.screenshot(path=str(ARTIFACTS / "wall-enlarged.png"))
            # The gateway drops the tile's session: the tile notices and plays again.
            relay = app.state.gateway.relay
            (dropped,) = relay.sessions(DEMO_ID)
            await relay.close_session(DEMO_ID, dropped.id)
            for _ in range(150):
                if relay.sessions(DEMO_ID) and relay.sessions(DEMO_ID)[0].connected:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the tile did not reconnect within 15 s")
            before = await decoded_frames(page, 0)
            await asyncio.sleep(1.5)
            assert await decoded_frames(page, 0) > before + 20
            assert not errors, errors
            print(f"wall: first frame {first_frame * 1000:.0f} ms after the click, {rate:.1f} fps")
        finally:
            await browser.close()
