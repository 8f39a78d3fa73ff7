"""Recorded footage on the video wall: the selected tile's timeline and MP4 playback, in
headless Debian Chromium against a gateway that records a demo camera continuously."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import httpx

from tests.credentials import ADMIN_HEADERS
from tests.web.test_wall import (
    ARTIFACTS,
    CHROMIUM,
    FLAGS,
    decoded_frames,
    gateway_server,
    playwright_api,
    sign_in,
)

REC_ID = "11010600001320000002"
RECORDED = f"""\
  - {{id: "{REC_ID}", name: "East gate", class: A, region: "110106", owner_unit: "test",
     sector: police, recording: continuous,
     source: {{main_url: "demo://east?width=640&height=360&fps=25&gop=50"}}}}
"""
# Short segments: the footage is playable once a segment is closed and indexed.
SECTIONS = "recorder: {segment_seconds: 5, batch_seconds: 0.1}\n"


async def recorded_segments(base: str, count: int, timeout: float) -> list[dict]:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=base, headers=ADMIN_HEADERS) as http:
        deadline = time.monotonic() + timeout
        while True:
            response = await http.get(f"/api/v1/cameras/{REC_ID}/recordings", params={"start": "0"})
            assert response.status_code == 200, response.text
            segments: list[dict] = response.json()["segments"]  # type: ignore[type-arg]
            if len(segments) >= count:
                return segments
            assert time.monotonic() < deadline, f"{len(segments)} segments after {timeout} s"
            await asyncio.sleep(0.5)


async def test_timeline_plays_recording_and_returns_live(tmp_path: Path) -> None:
    async with (
        gateway_server(tmp_path / "data", RECORDED, SECTIONS) as (base, _app),
        playwright_api.async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await sign_in(page, base)
            await page.locator(f'.camera[data-camera="{REC_ID}"]').click()  # into tile 0
            tile = page.locator(".tile").nth(0)
            await tile.click()  # select it: the panel follows the selected tile
            assert await page.locator("#pb-camera").inner_text() == "East gate"
            await page.wait_for_function(
                "document.querySelectorAll('.tile video')[0]"
                ".getVideoPlaybackQuality().totalVideoFrames > 0",
                timeout=15000,
            )
            assert await page.locator("#pb-clock").inner_text() == "直播 LIVE"

            # ~20 s of footage, then the 1 h view (the zoom reloads the timeline).
            await recorded_segments(base, 3, 35)
            await page.click('[data-zoom="1"]')
            span = page.locator("#tl-track .span:not(.open)").first
            await span.wait_for(timeout=5000)
            start = float(await span.get_attribute("data-start") or 0)
            end = float(await span.get_attribute("data-end") or 0)
            assert end - start >= 10, (start, end)
            assert "recorded" in (await span.get_attribute("title") or "")

            box = await span.bounding_box()
            assert box is not None
            await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await page.wait_for_function(
                "document.querySelector('.tile.recorded video')?.currentTime > 1.5", timeout=15000
            )
            # Frames decode from the MP4 (not WHEP: that session is gone).
            assert await page.evaluate(
                "document.querySelectorAll('.tile video')[0].srcObject === null"
            )
            before = await decoded_frames(page, 0)
            await asyncio.sleep(1)
            assert await decoded_frames(page, 0) > before + 10

            clock = page.locator("#pb-clock")
            played = float(await clock.get_attribute("data-time") or 0)
            assert start - 1 <= played <= end, (start, played, end)
            # The text the operator reads is that time, in the browser's (= this host's) zone.
            shown = (await clock.inner_text()).removeprefix("回放 PLAYBACK ")
            assert abs(datetime.strptime(shown, "%Y-%m-%d %H:%M:%S").timestamp() - played) < 2
            assert "PLAYBACK" in await tile.locator(".mode").inner_text()
            assert await page.locator("#tl-cursor").is_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "wall-playback.png"))

            await page.click("#pb-live")
            await page.wait_for_function(
                "document.querySelectorAll('.tile video')[0].srcObject !== null", timeout=15000
            )
            assert await clock.inner_text() == "直播 LIVE"
            assert await tile.locator(".mode").inner_text() == ""
            assert "recorded" not in (await tile.get_attribute("class") or "")
            assert not errors, errors
        finally:
            await browser.close()
