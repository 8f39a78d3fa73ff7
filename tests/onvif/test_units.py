"""The ONVIF adapter's pure parts: classification, topics, profiles, discovery replies."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import zeep.exceptions

from adapters.onvif import errors
from adapters.onvif.device import StreamProfile, choose_streams, without_userinfo
from adapters.onvif.discovery import annotate, parse_probe_matches
from adapters.onvif.events import PullPointWatcher, normalise_topic, parse_notification
from gateway import settings as config
from gateway.bus import MemoryBus
from gateway.catalog.models import Camera, OnvifInfo, Region, StreamSource
from gateway.catalog.store import CatalogStore
from gateway.eventlog import EventLog
from tests.inprocess import gateway_client

WHERE = "192.0.2.1:80"


def test_classify_tells_password_from_web_page_from_fault() -> None:
    auth = zeep.exceptions.Fault("Sender not authorized", code="s:Receiver")
    assert errors.classify(auth, WHERE).code == "onvif_auth_failed"
    subcode = zeep.exceptions.Fault("x", code="s:Sender", subcodes=[NS(text="ter:NotAuthorized")])
    assert errors.classify(subcode, WHERE).code == "onvif_auth_failed"
    page = zeep.exceptions.Fault("Unknown fault occured", detail=b"<html><body>501</body></html>")
    assert errors.classify(page, WHERE).code == "not_onvif"
    refused = zeep.exceptions.Fault("Action not supported", code="s:Receiver")
    assert errors.classify(refused, WHERE).code == "onvif_fault"
    assert errors.classify(zeep.exceptions.TransportError(status_code=401), WHERE).code == (
        "onvif_auth_failed"
    )
    assert errors.classify(zeep.exceptions.TransportError(status_code=404), WHERE).code == (
        "not_onvif"
    )
    assert errors.classify(TimeoutError(), WHERE).code == "onvif_unreachable"


def _profile(token: str, width: int, height: int, uri: str) -> StreamProfile:
    return StreamProfile(token, token, "H264", width, height, 25.0, uri, ptz=False)


def test_main_is_the_largest_picture_and_sub_the_smallest_other_uri() -> None:
    big = _profile("a", 1920, 1080, "rtsp://h/1")
    mid = _profile("b", 1280, 720, "rtsp://h/2")
    small = _profile("c", 640, 360, "rtsp://h/3")
    assert choose_streams([small, big, mid]) == (big, small)
    same_uri = _profile("d", 640, 360, "rtsp://h/1")
    assert choose_streams([big, same_uri]) == (big, None)
    assert without_userinfo("rtsp://admin:pw@10.0.0.1:554/s") == "rtsp://10.0.0.1:554/s"


def _notification(topic: str, data: dict[str, str], **message: Any) -> Any:
    items = NS(SimpleItem=[NS(Name=k, Value=v) for k, v in data.items()])
    source = NS(SimpleItem=[NS(Name="InputToken", Value="DI_2")])
    utc = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    body = NS(Data=items, Source=source, UtcTime=utc, PropertyOperation="Changed", **message)
    return NS(Topic=NS(_value_1=topic), Message=NS(_value_1=body))


def test_topics_of_several_vendors_map_onto_the_vocabulary() -> None:
    assert normalise_topic("tns1:RuleEngine/CellMotionDetector/Motion//.") == (
        "RuleEngine/CellMotionDetector/Motion"
    )
    motion = parse_notification(
        _notification("tns1:RuleEngine/CellMotionDetector/Motion", {"IsMotion": "true"})
    )
    assert motion is not None and (motion.type, motion.active) == ("motion", True)
    alarm = parse_notification(_notification("tt:VideoSource/MotionAlarm", {"State": "false"}))
    assert alarm is not None and (alarm.type, alarm.active) == ("motion", False)
    tamper = parse_notification(
        _notification("tns1:RuleEngine/TamperDetector/Tamper", {"IsTamper": "true"})
    )
    assert tamper is not None and tamper.type == "occlusion"
    di = parse_notification(
        _notification("tns1:Device/Trigger/DigitalInput", {"LogicalState": "1"})
    )
    assert di is not None and di.type == "alarm_input" and di.source == {"InputToken": "DI_2"}
    assert (
        parse_notification(_notification("tns1:Monitoring/ProcessorUsage", {"Value": "3"})) is None
    )


async def test_an_alarm_opens_once_and_closes_with_its_start(tmp_path: Path) -> None:
    bus = MemoryBus()
    events = EventLog(tmp_path / "events", bus)
    await events.start()
    published = bus.subscribe(after="0-0")  # everything, from the retained history

    async def connect() -> Any:
        raise AssertionError("not used")

    watcher = PullPointWatcher("34150200001320000101", connect, events)
    try:
        for active in (True, True, False, False):  # a repeat after re-subscribing; a stray end
            alarm = parse_notification(
                _notification("tns1:Device/Trigger/DigitalInput", {"LogicalState": str(active)})
            )
            assert alarm is not None
            await watcher._alarm(alarm)
        opened, closed = [await asyncio.wait_for(anext(published), 5) for _ in range(2)]
        assert opened.end is None and closed.start == opened.start and closed.end is not None
        assert opened.data["event_id"] == closed.data["event_id"]  # one event, opened and closed
        logged = await events.open_events(source="onvif")
        assert logged == []  # nothing left open
    finally:
        await events.close()


PROBE_MATCH = """<?xml version="1.0"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
  xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
  xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">
 <s:Header><a:RelatesTo>{relates}</a:RelatesTo></s:Header>
 <s:Body>{open}<d:ProbeMatch>
  <a:EndpointReference><a:Address>urn:uuid:1</a:Address></a:EndpointReference>
  <d:Types>dn:NetworkVideoTransmitter</d:Types>
  <d:Scopes>onvif://www.onvif.org/name/Gate%20Cam onvif://www.onvif.org/hardware/DS-2CD</d:Scopes>
  <d:XAddrs>http://192.0.2.7/onvif/device_service http://[2001:db8::7]/onvif/device_service</d:XAddrs>
 </d:ProbeMatch>{close}</s:Body></s:Envelope>"""


def test_probe_matches_with_and_without_the_wrapper() -> None:
    for open_, close in (("<d:ProbeMatches>", "</d:ProbeMatches>"), ("", "")):
        data = PROBE_MATCH.format(relates="urn:uuid:me", open=open_, close=close).encode()
        [device] = parse_probe_matches(data, "urn:uuid:me", "192.0.2.7")
        assert device.name == "Gate Cam" and device.hardware == "DS-2CD"
        assert ("192.0.2.7", 80) in device.hosts
    other = PROBE_MATCH.format(relates="urn:uuid:other", open="", close="").encode()
    assert parse_probe_matches(other, "urn:uuid:me", "192.0.2.7") == []
    assert parse_probe_matches(b"<not xml", "urn:uuid:me", "192.0.2.7") == []


async def test_onvif_facts_are_kept_in_the_catalog(tmp_path: Path) -> None:
    info = OnvifInfo(host="192.0.2.7", port=8080, manufacturer="HIKVISION", ptz=True)
    camera = Camera(
        id="34150200001320000101",
        name="gate",
        camera_class="B",  # type: ignore[arg-type]
        region="341502",
        owner_unit="school",
        sector="education",  # type: ignore[arg-type]
        source=StreamSource(main_url="rtsp://192.0.2.7/1", username="admin", password="pw-1234"),
        onvif=info,
    )
    async with await CatalogStore.open(tmp_path / "c.sqlite3") as store:
        await store.create_region(Region(code="341502", name="金安区"))
        await store.create_camera(camera)
        stored = await store.get_camera(camera.id)
    assert stored.onvif == info
    data = PROBE_MATCH.format(relates="m", open="", close="").encode()
    [(_, camera_id)] = annotate(parse_probe_matches(data, "m", "192.0.2.7"), [stored])
    assert camera_id is None  # port 80 is not the camera's 8080


async def test_a_camera_not_onboarded_through_onvif_says_so(tmp_path: Path) -> None:
    demo = config.DemoSettings().id
    async with gateway_client(tmp_path / "data", "hub: {probe_interval: 3600}\n") as http:
        for method, path in (
            ("GET", f"/api/v1/cameras/{demo}/ptz/status"),
            ("POST", f"/api/v1/cameras/{demo}/ptz/home"),
            ("GET", f"/api/v1/cameras/{demo}/onvif"),
        ):
            response = await http.request(method, path)
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "not_onvif_camera"
        response = await http.post(f"/api/v1/cameras/{demo}/ptz/absolute", json={"pan": 2})
        assert response.status_code == 422
