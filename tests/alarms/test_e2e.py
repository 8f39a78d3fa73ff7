"""End to end: the real ``sharpeyes serve`` process, a simulated box, real Redis.

The story of the issue: an integrator onboards a box, the box comes online and runs a
drill, then a real emergency; operators acknowledge and close both. Every step is checked
where the police sub-platform and the county centre would see it — the SSE stream, the
Redis Stream read through a consumer group, the signed webhooks, the audit log, and the
evidence holds on the linked cameras' recordings. Then a crash between an alarm and its
acknowledgement, and an SSE client that resumes across it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.alarms.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from gateway.redact import redact
from tests.alarms.box import Box
from tests.alarms.harness import Api
from tests.alarms.sse import SseClient
from tests.credentials import ADMIN_TOKEN
from tests.e2e.process import GatewayProcess
from tests.peers.ports import free_port

pytestmark = pytest.mark.e2e

GATE, YARD = "34150200001320000001", "34150200001320000002"
BOX = "34150200001340000001"
SECRET = "e2e-box-shared-secret-0123"
HOOK_SECRET = "e2e-webhook-secret-0123"
STREAM = "sharpeyes:events"  # the RedisBus's stream
GROUP = "police-subplatform"
redact.add(SECRET)  # so the gateway-log check of GatewayProcess looks for it too
redact.add(HOOK_SECRET)
TOKEN = "vendor-platform-query-token-0123"  # the weaker intake, for one heartbeat
redact.add(TOKEN)


def config(alarms: str = "", extra: str = "") -> str:
    return f"""
hub: {{probe_interval: 3600, idle_stop_after: 3, open_timeout: 3, read_timeout: 3}}
demo: {{id: "{GATE}", region: "341502", region_name: 金安区,
        url: "demo://gate?width=160&height=120&fps=5"}}
regions: [{{code: "341502001", name: 城北街道}}]
cameras:
  - {{id: "{YARD}", name: 操场, class: B, region: "341502001", owner_unit: 椿树小学,
     sector: education, source: {{main_url: "demo://yard?width=160&height=120&fps=5"}}}}
alarms: {{scan_interval: 0.2, stream_keepalive: 1, hold_before: 60, hold_after: 120{alarms}}}
{extra}"""


class Hooks(ThreadingHTTPServer):
    """A platform that wants a push: records each webhook it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/hook"

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    yield server
    server.shutdown()
    server.server_close()


def device(**changes: object) -> dict[str, object]:
    return {"id": BOX, "name": "一键报警 门卫室", "school": "椿树小学", "region": "341502001",
            "location": "南门门卫室", "cameras": [GATE, YARD], "phones": ["0564-3336110"],
            "secret": SECRET, "heartbeat_interval": 30, **changes}  # fmt: skip


def wait_linked(api: Api, alarm_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alarm: dict[str, Any] = api.get(f"/api/v1/alarms/{alarm_id}").json()
        if "linkage" in alarm["data"]:
            return alarm
        time.sleep(0.2)
    raise AssertionError(f"alarm {alarm_id} was not linked: {alarm}")


def test_box_onboarding_drill_emergency_ack_close(
    tmp_path: Path, redis_ready: str, hooks: Hooks
) -> None:
    sub_platform: Any = redis.Redis.from_url(redis_ready)  # replies typed loosely by redis-py
    sub_platform.delete(STREAM)
    # The sub-platform's group exists before the gateway writes: it reads from the start.
    sub_platform.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    webhooks = (
        f', webhooks: [{{url: "{hooks.url}", secret: "{HOOK_SECRET}", types: [emergency, test]}}]'
    )
    with GatewayProcess(tmp_path, config(webhooks, f'redis_url: "{redis_ready}"')) as gw:
        admin = Api(gw.base_url, ADMIN_TOKEN)
        integrator = admin.user("installer", "integrator", ["341502"])
        operator = admin.user("duty", "operator", ["341502"])
        sse = SseClient(f"{gw.base_url}/api/v1/events/stream", operator.token).start()
        try:
            # Onboarding, and the box's first heartbeat.
            created = integrator.post("/api/v1/alarm-devices", json=device())
            assert created.status_code == 201, created.text
            box = Box(gw.base_url, BOX, SECRET)
            assert box.send("heartbeat").status_code == 200
            # A vendor platform that can only call a URL: its token must not reach the
            # gateway's access log (GatewayProcess checks the log for it on exit).
            integrator.patch(f"/api/v1/alarm-devices/{BOX}", json={"query_token": TOKEN})
            weak = box.post(b'{"type":"heartbeat"}', {}, token=TOKEN)
            assert weak.status_code == 200, weak.text
            sse.wait_for(lambda: "device_online" in [m["type"] for m in sse.messages])

            # The drill: the whole path, marked as a test, handled by the integrator.
            drill = box.send("test").json()["event_id"]
            wait_linked(integrator, drill)
            assert integrator.post(f"/api/v1/alarms/{drill}/ack").status_code == 200
            done = integrator.post(
                f"/api/v1/alarms/{drill}/close", json={"disposition": "演练正常"}
            )
            assert done.status_code == 200

            # The emergency.
            sent_at = time.time()
            raised = box.send("emergency", button=1)
            assert raised.status_code == 200
            alarm_id = raised.json()["event_id"]
            sse.wait_for(lambda: any(m["data"].get("state") == "raised" for m in sse.of(alarm_id)))
            latency = time.time() - sent_at
            alarm = wait_linked(operator, alarm_id)
            assert (
                operator.post(f"/api/v1/alarms/{alarm_id}/ack", json={"note": "出警"}).status_code
                == 200
            )
            closed = operator.post(
                f"/api/v1/alarms/{alarm_id}/close", json={"disposition": "学生误触, 已到场核实"}
            )
            assert closed.status_code == 200
            sse.wait_for(lambda: sse.of(alarm_id)[-1]["data"]["state"] == "closed")
            sse.wait_for(lambda: sse.of(drill)[-1]["data"]["state"] == "closed")
        finally:
            sse.stop()

        # --- the SSE stream: every step of both alarms, in order, the drill marked --------
        assert latency < 2.0, f"alarm to SSE client took {latency:.2f} s"
        for event_id, kind, test in ((drill, "test", True), (alarm_id, "emergency", False)):
            story = sse.of(event_id)
            assert {m["type"] for m in story} == {kind}
            assert all(m["data"]["test"] is test for m in story)
            states = [m["data"]["state"] for m in story]
            assert states[0] == "raised" and states[-2:] == ["acknowledged", "closed"]
            assert any("linkage" in m["data"] for m in story)
            versions = [m["data"]["version"] for m in story]
            assert versions == sorted(versions) and len(set(versions)) == len(versions)
        linkage_events = [m for m in sse.messages if m["type"] == "alarm_linkage"]
        assert {(m["camera"], m["data"]["alarm_id"]) for m in linkage_events} == {
            (c, a) for c in (GATE, YARD) for a in (drill, alarm_id)
        }
        assert all(m["data"]["test"] is (m["data"]["alarm_id"] == drill) for m in linkage_events)

        # --- the Redis Stream, read at the sub-platform's own pace through its group -----
        entries: list[tuple[str, dict[str, Any]]] = []
        while True:
            reply = sub_platform.xreadgroup(GROUP, "reader-1", {STREAM: ">"}, count=10)
            if not reply:
                break
            for raw_id, fields in reply[0][1]:
                entries.append((raw_id.decode(), json.loads(fields[b"event"])))
                sub_platform.xack(STREAM, GROUP, raw_id)
        assert [i for i, _ in entries] == [i for i in sse.ids if i]  # the same messages
        assert [
            e["data"].get("state") for _, e in entries if e["data"].get("event_id") == alarm_id
        ][-1] == "closed"
        assert sub_platform.xpending(STREAM, GROUP)["pending"] == 0

        # --- the audit log: who did what ---------------------------------------------------
        audit = admin.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
        did = [(e["actor"], e["action"], e["detail"].get("alarm")) for e in audit]
        assert ("installer", "alarm_device_create", None) in did
        assert ("installer", "alarm_ack", drill) in did and (
            "installer",
            "alarm_close",
            drill,
        ) in did
        assert ("duty", "alarm_ack", alarm_id) in did and ("duty", "alarm_close", alarm_id) in did
        close_entry = next(
            e for e in audit if e["action"] == "alarm_close" and e["detail"]["alarm"] == alarm_id
        )
        assert close_entry["detail"]["disposition"] == "学生误触, 已到场核实"

        # --- evidence holds on both linked cameras' recordings ----------------------------
        start = alarm["start"]
        for camera in (GATE, YARD):
            holds = operator.get(f"/api/v1/cameras/{camera}/holds").json()
            hold = next(h for h in holds if alarm_id in h["reason"])
            assert not hold["reason"].startswith("TEST")
            span = time.mktime(time.strptime(hold["end"][:19], "%Y-%m-%dT%H:%M:%S")) - time.mktime(
                time.strptime(hold["start"][:19], "%Y-%m-%dT%H:%M:%S")
            )
            assert span == pytest.approx(180, abs=1) and hold["start"] < start < hold["end"]
            timeline = operator.get(f"/api/v1/cameras/{camera}/recordings").json()
            assert any(alarm_id in h["reason"] for h in timeline["holds"])
            snapshot = operator.get(f"/api/v1/alarms/{alarm_id}/cameras/{camera}/snapshot.jpg")
            assert snapshot.status_code == 200 and snapshot.content[:2] == b"\xff\xd8"

        # --- the webhooks: signed pushes of the two alarms' steps -----------------------------
        pushed: dict[str, list[str]] = {}
        for headers, body in hooks.received:
            verify(
                HOOK_SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], window=60
            )
            message = json.loads(body)
            pushed.setdefault(message["data"]["event_id"], []).append(message["data"]["state"])
            assert (headers.get("X-Sharpeyes-Test") == "1") is (message["type"] == "test")
        assert pushed[alarm_id][-1] == "closed" and pushed[drill][-1] == "closed"
        assert gw.stop()


def test_crash_between_alarm_and_acknowledgement_loses_nothing(tmp_path: Path) -> None:
    """In-process bus: after the restart only the event log knows what happened before."""
    gw = GatewayProcess(tmp_path, config())
    with gw:
        admin = Api(gw.base_url, ADMIN_TOKEN)
        operator = admin.user("duty", "operator", ["341502"])
        assert admin.post("/api/v1/alarm-devices", json=device()).status_code == 201
        box = Box(gw.base_url, BOX, SECRET)
        url = f"{gw.base_url}/api/v1/events/stream"
        sse = SseClient(url, operator.token).start()
        alarm_id = box.send("emergency").json()["event_id"]
        sse.wait_for(lambda: bool(sse.of(alarm_id)))
        sse.stop()  # the client is away from here on
        last_seen = sse.last_event_id
        drill = box.send("test").json()["event_id"]  # missed by the client
        gw.kill()  # a crash: no clean shutdown, linkage possibly half done

        gw.start()
        # Nothing lost: the alarm is there, still waiting for its acknowledgement.
        open_ids = [a["id"] for a in operator.get("/api/v1/alarms").json()]
        assert alarm_id in open_ids and drill in open_ids
        resumed = SseClient(url, operator.token, last_event_id=last_seen).start()
        try:
            wait_linked(operator, alarm_id)
            acked = operator.post(f"/api/v1/alarms/{alarm_id}/ack")
            assert acked.status_code == 200, acked.text
            resumed.wait_for(lambda: resumed.of(alarm_id)[-1]["data"]["state"] == "acknowledged")
            resumed.wait_for(lambda: any("linkage" in m["data"] for m in resumed.of(drill)))
        finally:
            resumed.stop()
        # The client missed nothing: every event the log holds reached it, at its latest
        # version by the end, across the crash.
        seen: dict[str, int] = {}
        for m in sse.messages + resumed.messages:
            key = m["data"]["event_id"]
            seen[key] = max(seen.get(key, 0), m["data"]["version"])
        with closing(sqlite3.connect(gw.data / "events" / "events.sqlite3")) as log:
            held = dict(log.execute("SELECT id, version FROM events").fetchall())
        assert held and all(seen.get(key, 0) >= version for key, version in held.items())
        assert drill in seen and resumed.of(drill)[0]["data"]["test"] is True
