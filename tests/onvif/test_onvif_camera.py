"""The ONVIF adapter against a real simulated camera (ipycam) in a private network namespace.

The gateway runs in-process inside the namespace (see tests/peers/onvif.py): real hub,
real SQLite, real HTTP/SOAP, RTSP and WS-Discovery traffic, all on the namespace's loopback.

ipycam has no Events service: the PullPoint operations are served by the fixture itself
(tests/peers/onvif_camera.py builds the replies from the ONVIF events.wsdl), so the events
test checks the gateway's subscription, renewal and re-subscription against that fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.onvif import errors
from gateway.bus import Event
from tests.credentials import LOOPBACK
from tests.inprocess import gateway_client, gateway_of
from tests.peers.onvif import NetNamespace, OnvifCamera
from tests.peers.ports import free_port

pytestmark = pytest.mark.e2e

CAMERA_ID = "34150200001320000101"
REGION = "341502"


@pytest.fixture
async def client(tmp_path: Path, onvif_netns: NetNamespace) -> AsyncIterator[httpx.AsyncClient]:
    text = (
        "demo: {enabled: false}\n"
        "hub: {probe_interval: 3600, idle_stop_after: 1, open_timeout: 8, read_timeout: 8}\n"
        "onvif: {timeout: 5, pull_timeout: 1, subscription_ttl: 10, backoff_initial: 0.3,"
        " backoff_max: 1, health_interval: 3600, discovery_timeout: 1}\n" + LOOPBACK
    )
    async with gateway_client(tmp_path / "data", text, timeout=30) as http:
        response = await http.post("/api/v1/regions", json={"code": REGION, "name": "金安区"})
        assert response.status_code == 201, response.text
        yield http


def onboarding(camera: OnvifCamera, **overrides: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": camera.port,
        "username": camera.user,
        "password": camera.password,
        "id": CAMERA_ID,
        "name": "椿树小学 north gate",
        "class": "B",
        "region": REGION,
        "owner_unit": "椿树小学",
        "sector": "education",
        **overrides,
    }


async def onboard(client: httpx.AsyncClient, camera: OnvifCamera) -> dict[str, Any]:
    response = await client.post("/api/v1/onvif/cameras", json=onboarding(camera))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def eventually(check: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - polls the API as a client
            await asyncio.sleep(interval)
    return result


async def test_discovery_finds_the_camera_by_multicast_and_unicast(
    client: httpx.AsyncClient, onvif_camera: OnvifCamera, onvif_netns: NetNamespace
) -> None:
    for probe in ({"interface": "lo"}, {"host": "127.0.0.1"}):
        response = await client.post("/api/v1/onvif/discover", json=probe)
        assert response.status_code == 200, response.text
        devices = response.json()["devices"]
        [device] = [d for d in devices if onvif_camera.device_url in d["xaddrs"]]
        assert device["name"] == "SimCam" and device["in_catalog"] is False

    await onboard(client, onvif_camera)
    response = await client.post("/api/v1/onvif/discover", json={"interface": "127.0.0.1"})
    [device] = [d for d in response.json()["devices"] if onvif_camera.device_url in d["xaddrs"]]
    assert device["in_catalog"] is True and device["camera_id"] == CAMERA_ID

    # The command line, reading the same catalog file.
    sharpeyes = Path(sys.executable).with_name("sharpeyes")
    data = gateway_of(client).settings.data_dir
    cli = onvif_netns.popen(
        [str(sharpeyes), "discover", "--host", "127.0.0.1", "--json", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.to_thread(cli.communicate, timeout=60)
    assert cli.returncode == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["xaddrs"] == [onvif_camera.device_url] and record["camera_id"] == CAMERA_ID


async def test_onboarding_creates_a_camera_that_goes_online(
    client: httpx.AsyncClient, onvif_camera: OnvifCamera
) -> None:
    body = await onboard(client, onvif_camera)
    camera = body["camera"]
    rtsp = f"rtsp://127.0.0.1:{onvif_camera.rtsp_port}"
    assert camera["source"] == {
        "main_url": f"{rtsp}/video_main",
        "sub_url": f"{rtsp}/video_sub",
        "has_credentials": True,
    }
    assert body["created"] is True and body["warnings"] == []
    assert [(p["width"], p["height"]) for p in body["profiles"]] == [(640, 360), (320, 180)]
    onvif = body["onvif"]
    assert (onvif["manufacturer"], onvif["model"], onvif["serial"]) == (
        "PythonCam",
        "VirtualCam-1",
        "PY-4711",
    )
    assert onvif["firmware"] == "1.3.0" and onvif["ptz"] and onvif["events"]
    assert abs(body["clock_offset"]) <= 1
    assert onvif_camera.password not in (await client.get(f"/api/v1/cameras/{CAMERA_ID}")).text

    gateway = gateway_of(client)
    # The idle camera's snapshot comes from the device's snapshot URI (basic auth), so it
    # does not start an RTSP pull.
    snap = await client.get(f"/api/v1/cameras/{CAMERA_ID}/snapshot.jpg")
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    assert not gateway.stream(CAMERA_ID).running

    for stream, size in (("main", (640, 360)), ("sub", (320, 180))):
        await gateway.stream(CAMERA_ID, stream).next_keyframe(20)
        status = gateway.stream(CAMERA_ID, stream).status
        assert status.state == "online" and (status.width, status.height) == size

    again = await client.post(
        "/api/v1/onvif/cameras", json=onboarding(onvif_camera, name="renamed")
    )
    assert again.status_code == 200 and again.json()["camera"]["name"] == "renamed"


async def test_clear_errors_for_password_address_and_non_onvif_server(
    client: httpx.AsyncClient, onvif_camera: OnvifCamera, onvif_netns: NetNamespace
) -> None:
    wrong = onboarding(onvif_camera, password="Wrong-" + onvif_camera.password)
    response = await client.post("/api/v1/onvif/cameras", json=wrong)
    assert response.status_code == 502 and response.json()["code"] == "onvif_auth_failed"
    assert "Wrong-" not in response.text

    closed = onboarding(onvif_camera, port=free_port())
    response = await client.post("/api/v1/onvif/cameras", json=closed)
    assert response.json()["code"] == "onvif_unreachable", response.text

    port = free_port()
    web = onvif_netns.popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        response = await eventually(
            lambda: _post_until_listening(client, onboarding(onvif_camera, port=port))
        )
        assert response.json()["code"] == "not_onvif", response.text
    finally:
        web.terminate()
        web.wait(10)
    assert (await client.get(f"/api/v1/cameras/{CAMERA_ID}")).status_code == 404


async def _post_until_listening(client: httpx.AsyncClient, body: dict[str, Any]) -> Any:
    response = await client.post("/api/v1/onvif/cameras", json=body)
    return None if response.json()["code"] == "onvif_unreachable" else response


async def test_device_clock_far_off_is_compensated_and_reported(
    client: httpx.AsyncClient, onvif_netns: NetNamespace
) -> None:
    gateway = gateway_of(client)
    with OnvifCamera(
        onvif_netns, user="admin", password="Clock-1234", clock_offset=7200, ptz=False
    ) as cam:
        body = await onboard(client, cam)
        assert 7199 <= body["clock_offset"] <= 7201
        assert any("clock" in warning for warning in body["warnings"])
        # A fixed camera: PTZ says so.
        response = await client.get(f"/api/v1/cameras/{CAMERA_ID}/ptz/status")
        assert response.status_code == 409 and response.json()["code"] == "ptz_unsupported"

        strict = gateway.onvif.device("127.0.0.1", cam.port, "admin", "Clock-1234")
        strict.compensate_clock = False
        with pytest.raises(errors.OnvifClockSkew) as caught:
            async with strict:
                await strict.facts()
        assert caught.value.code == "onvif_clock_skew"
        assert re.search(r"clock is \+7(199|200|201) s off", caught.value.message)


async def test_ptz_moves_change_the_simulators_position(
    client: httpx.AsyncClient, onvif_camera: OnvifCamera
) -> None:
    await onboard(client, onvif_camera)
    ptz = f"/api/v1/cameras/{CAMERA_ID}/ptz"

    async def position() -> dict[str, float]:
        response = await client.get(f"{ptz}/status")
        assert response.status_code == 200, response.text
        body: dict[str, float] = response.json()["position"]
        return body

    assert (await client.post(f"{ptz}/home")).status_code == 204
    r = await client.post(f"{ptz}/absolute", json={"pan": 0.5, "tilt": -0.25, "zoom": 0.5})
    assert r.status_code == 204, r.text
    assert await position() == {"pan": 0.5, "tilt": -0.25, "zoom": 0.5}
    own = onvif_camera.ptz_position()  # the simulator's own report, not through ONVIF
    assert (own["pan"], own["tilt"], own["zoom"]) == (0.5, -0.25, 0.5)

    assert (await client.post(f"{ptz}/relative", json={"pan": -0.25})).status_code == 204
    assert (await position())["pan"] == pytest.approx(0.25)

    r = await client.post(f"{ptz}/presets", json={"name": "north gate"})
    assert r.status_code == 201
    token = r.json()["token"]

    assert (await client.post(f"{ptz}/move", json={"pan": 1.0, "timeout": 5})).status_code == 204
    await asyncio.sleep(0.5)
    assert (await client.post(f"{ptz}/stop")).status_code == 204
    moved = (await position())["pan"]
    assert moved > 0.3
    await asyncio.sleep(0.3)
    assert (await position())["pan"] == moved  # stopped

    presets = (await client.get(f"{ptz}/presets")).json()
    assert {"token": token, "name": "north gate"}.items() <= next(
        p for p in presets if p["token"] == token
    ).items()
    assert (await client.post(f"{ptz}/presets/{token}/goto")).status_code == 204
    assert (await position())["pan"] == pytest.approx(0.25)
    assert (await client.post(f"{ptz}/home")).status_code == 204
    assert onvif_camera.ptz_position()["pan"] == 0.0

    r = await client.post(f"{ptz}/absolute", json={"pan": 3})
    assert r.status_code == 422


async def test_events_subscription_survives_a_restart_of_the_camera(
    client: httpx.AsyncClient, onvif_camera: OnvifCamera
) -> None:
    await onboard(client, onvif_camera)
    gateway = gateway_of(client)
    received: list[Event] = []

    async def collect() -> None:
        async for event in gateway.bus.subscribe(types={"motion", "occlusion", "alarm_input"}):
            received.append(event)

    async def watcher(field: str, least: int) -> Any:
        body = (await client.get(f"/api/v1/cameras/{CAMERA_ID}/onvif")).json()
        sub = body["event_subscription"]
        return sub if sub["state"] == "subscribed" and sub[field] >= least else None

    async def events(count: int) -> list[Event] | None:
        return received if len(received) >= count else None

    collector = asyncio.create_task(collect())
    try:
        await eventually(lambda: watcher("subscriptions", 1))
        for kind, active in (
            ("motion", True),
            ("motion", False),
            ("tamper", True),
            ("input", True),
        ):
            onvif_camera.publish(kind, active)
        await eventually(lambda: events(4))
        motion_start, motion_end, tamper, alarm = received[:4]
        assert (motion_start.type, motion_start.end, motion_start.camera) == (
            "motion",
            None,
            CAMERA_ID,
        )
        assert motion_end.type == "motion" and motion_end.start == motion_start.start
        assert motion_end.end is not None and motion_end.source == "onvif"
        # One logical event in the event log, opened then closed.
        assert motion_end.data["event_id"] == motion_start.data["event_id"]
        logged = (await client.get(f"/api/v1/events?camera={CAMERA_ID}&type=motion")).json()
        assert [e["id"] for e in logged["items"]] == [motion_start.data["event_id"]]
        assert tamper.type == "occlusion" and alarm.type == "alarm_input"
        assert alarm.data["InputToken"] == "DI_1"
        await eventually(lambda: watcher("renewals", 1), timeout=15)  # renewed at 80 % of 10 s

        # The camera reboots, and comes back with its RTSP server on another port: its
        # subscriptions are gone, the gateway subscribes again.
        await gateway.stream(CAMERA_ID).next_keyframe(20)
        onvif_camera.rtsp_port = free_port()
        onvif_camera.restart()
        await eventually(lambda: watcher("subscriptions", 2), timeout=30)
        onvif_camera.publish("motion", True)
        await eventually(lambda: events(5))
        assert received[4].type == "motion" and received[4].end is None

        # The health check (run now instead of waiting for its interval) finds the new
        # stream URIs; the catalog follows them and the stream comes back online.
        checked = (await client.post(f"/api/v1/cameras/{CAMERA_ID}/onvif/check")).json()
        assert checked["health"]["ok"] is True
        source = (await client.get(f"/api/v1/cameras/{CAMERA_ID}")).json()["source"]
        assert source["main_url"].startswith(f"rtsp://127.0.0.1:{onvif_camera.rtsp_port}/")
        await gateway.stream(CAMERA_ID).next_keyframe(30)
        assert gateway.stream(CAMERA_ID).status.state == "online"
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
