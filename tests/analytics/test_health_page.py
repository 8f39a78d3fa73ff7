"""The per-camera health page (gateway/web/health.html) in headless Debian Chromium, against
the gateway app on 127.0.0.1 with events in its event log."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.app import Gateway
from gateway.bus import Event
from tests.web.test_wall import ARTIFACTS, CHROMIUM, DEMO_ID, FLAGS, gateway_server, playwright_api

OTHER_ID = "11010600001320000009"


def jpeg(level: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((90, 160, 3), level, np.uint8))
    assert ok
    return data.tobytes()


async def test_health_page_draws_the_last_24_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = secrets.token_urlsafe(32)
    monkeypatch.setenv("SHARPEYES_ADMIN_TOKEN", token)
    now = time.time()
    async with (
        gateway_server(tmp_path / "data") as (base, app),
        playwright_api.async_playwright() as pw,
    ):
        gateway: Gateway = app.state.gateway
        events = gateway.events
        black = await events.record(
            Event(
                type="black",
                source="analytics",
                camera=DEMO_ID,
                start=now - 3 * 3600,
                end=now - 2.5 * 3600,
                score=0.98,
                data={"origin": "live"},
            ),
            jpeg(5),
        )
        await events.record(
            Event(
                type="frozen",
                source="analytics",
                camera=DEMO_ID,
                start=now - 3600,
                score=1.0,
                data={"origin": "live"},
            ),
            jpeg(120),
        )
        await events.record(
            Event(
                type="motion",
                source="analytics",
                camera=DEMO_ID,
                start=now - 20 * 3600,
                end=now - 19 * 3600,
                score=0.4,
            ),
        )
        await events.record(  # another camera's: not on this page
            Event(type="black", source="analytics", camera=OTHER_ID, start=now - 600, end=now)
        )
        await events.record(  # older than a day: not on the plot
            Event(
                type="blur",
                source="analytics",
                camera=DEMO_ID,
                start=now - 30 * 3600,
                end=now - 29 * 3600,
            ),
        )
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(
                viewport={"width": 1280, "height": 900},
                extra_http_headers={"Authorization": f"Bearer {token}"},
            )
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{base}/wall/health.html?camera={DEMO_ID}", timeout=15000)
            bars = page.locator("#timeline svg rect.event")
            await page.wait_for_function(
                "document.querySelectorAll('#timeline svg rect.event').length === 3",
                timeout=15000,
            )
            assert await page.locator("#timeline svg rect.event.ongoing").count() == 1
            assert "frozen" in await page.locator("#faults").inner_text()
            assert "fault" in await page.locator("#verdict").inner_text()
            assert await page.locator("#events tbody tr").count() == 3

            await page.locator(f'#timeline rect[data-event="{black.id}"]').click()
            await page.wait_for_function(
                "document.getElementById('evidence').complete"
                " && document.getElementById('evidence').naturalWidth === 160",
                timeout=10000,
            )
            assert "black" in await page.locator("#detail-text").inner_text()
            assert await bars.first.get_attribute("fill")

            shot = tmp_path / "health.png"
            await page.screenshot(path=str(shot), full_page=True)
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(shot, ARTIFACTS / "health.png")
            assert errors == []
        finally:
            await browser.close()
