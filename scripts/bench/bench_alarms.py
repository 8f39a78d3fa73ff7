"""School alarms: alarm-to-event latency at an SSE client, and sustained alarms per second.

The real ``sharpeyes serve`` process, pinned to one core (CPU 1), on loopback; this script
(the boxes and the SSE client of the police sub-platform) on the other core (CPU 0).

1. **Latency**: a box linked to two demo cameras sends ``--latency-alarms`` emergencies,
   one every ``--interval`` seconds. For each: the box's wait for its answer (the alarm is
   persisted, fsync'd, before it), the time until the SSE client holds the event, and the
   time until the event's linkage (two evidence holds and two snapshots) is on the stream.
2. **Throughput**: ``--concurrency`` boxes without linked cameras send signed emergencies as
   fast as the gateway answers, for ``--seconds``. Reported: accepted alarms per second of
   wall time, gateway CPU per alarm (user + system of the process, so "per core" holds
   even on a busy host), and whether the SSE client received every one.
3. **Anchor**: the event log alone, in this process — ``EventLog.record`` with the
   in-process bus, one after another: the durable-write floor every alarm pays (two
   transactions with ``synchronous = FULL``), on the same disk.

Usage: .venv/bin/python scripts/bench/bench_alarms.py [--seconds 10] [--concurrency 16]
    [--latency-alarms 40] [--interval 0.25] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters.alarms import message, signature  # noqa: E402
from gateway.bus import Event, MemoryBus  # noqa: E402
from gateway.eventlog import EventLog  # noqa: E402
from tests.credentials import ADMIN_TOKEN  # noqa: E402
from tests.e2e.process import GatewayProcess  # noqa: E402

GATE, YARD = "34150200001320000001", "34150200001320000002"
# The demo cameras stay pulled this long after the last snapshot: the latency phase keeps
# them warm (as a camera that records is), and they are idle again before the throughput
# phase, whose CPU figure must not include their encoders.
IDLE_STOP = 2
LINKED_BOX = "34150200001340000001"
SECRET = "bench-box-shared-secret-0123"
CONFIG = f"""
log_level: warning
hub: {{probe_interval: 3600, idle_stop_after: {IDLE_STOP}}}
demo: {{id: "{GATE}", region: "341502", region_name: 金安区,
        url: "demo://gate?width=320&height=180&fps=10"}}
cameras:
  - {{id: "{YARD}", name: 操场, class: B, region: "341502", owner_unit: 椿树小学,
     sector: education, source: {{main_url: "demo://yard?width=320&height=180&fps=10"}}}}
alarms: {{renotify_after: 3600}}
"""


def box_id(n: int) -> str:
    return f"3415020000134{1000 + n:07d}"  # clear of LINKED_BOX


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


async def settle(done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until the SSE client has caught up (or give up: the result then shows it)."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a counter
        await asyncio.sleep(0.1)


class StreamReader:
    """The sub-platform's SSE client: arrival time of each event's raised and linked state."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.raised: dict[str, float] = {}
        self.linked: dict[str, float] = {}
        self.open = asyncio.Event()

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with (
            httpx.AsyncClient(timeout=None) as http,
            http.stream("GET", self.url, headers=headers) as response,
        ):
            async for line in response.aiter_lines():
                now = time.perf_counter()
                if line.startswith(":"):
                    self.open.set()
                if not line.startswith("data:"):
                    continue
                data = json.loads(line[5:])["data"]
                key = data["event_id"]
                self.raised.setdefault(key, now)
                if "linkage" in data:
                    self.linked.setdefault(key, now)


async def send(http: httpx.AsyncClient, device: str) -> tuple[httpx.Response, float]:
    body = message.encode("emergency", nonce=os.urandom(8).hex())
    started = time.perf_counter()
    response = await http.post(
        f"/api/v1/alarms/{device}", content=body, headers=signature.sign(SECRET, body)
    )
    return response, started


async def latency(
    gw: GatewayProcess, reader: StreamReader, count: int, interval: float
) -> dict[str, Any]:
    answered, to_event, to_linked = [], [], []
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=30) as http:
        sent: list[tuple[str, float]] = []
        for _ in range(count):
            response, started = await send(http, LINKED_BOX)
            assert response.status_code == 200, response.text
            answered.append(time.perf_counter() - started)
            sent.append((response.json()["event_id"], started))
            await asyncio.sleep(interval)
        await settle(lambda: len(reader.linked) >= count)
    for key, started in sent:
        to_event.append(reader.raised[key] - started)
        to_linked.append(reader.linked[key] - started)
    return {
        "box_answered": summary(answered),
        "sse_event": summary(to_event),
        "sse_linked": summary(to_linked),
    }


async def throughput(
    gw: GatewayProcess, reader: StreamReader, boxes: int, seconds: float
) -> dict[str, Any]:
    process = psutil.Process(gw.proc.pid if gw.proc else 0)
    accepted: list[str] = []
    failed = 0
    stop = time.monotonic() + seconds

    async def box(n: int, http: httpx.AsyncClient) -> None:
        nonlocal failed
        while time.monotonic() < stop:
            response, _ = await send(http, box_id(n))
            if response.status_code == 200:
                accepted.append(response.json()["event_id"])
            else:
                failed += 1

    limits = httpx.Limits(max_connections=boxes, max_keepalive_connections=boxes)
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=30, limits=limits) as http:
        before = process.cpu_times()
        started = time.perf_counter()
        await asyncio.gather(*(box(n, http) for n in range(1, boxes + 1)))
        wall = time.perf_counter() - started
        after = process.cpu_times()
    await settle(lambda: set(accepted) <= reader.raised.keys())
    cpu = (after.user - before.user) + (after.system - before.system)
    return {
        "accepted": len(accepted),
        "failed": failed,
        "alarms_per_s": round(len(accepted) / wall, 1),
        "gateway_cpu_ms_per_alarm": round(cpu / len(accepted) * 1000, 3),
        "alarms_per_cpu_s": round(len(accepted) / cpu, 1),
        "all_on_sse": set(accepted) <= reader.raised.keys(),
    }


async def anchor(folder: Path, count: int) -> dict[str, Any]:
    log = EventLog(folder, MemoryBus())
    await log.start()
    try:
        cpu, started = time.process_time(), time.perf_counter()
        for _ in range(count):
            await log.record(Event(type="emergency", source="alarm", device=LINKED_BOX))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        await log.close()
    return {
        "events": count,
        "events_per_s": round(count / wall, 1),
        "cpu_ms_per_event": round(cpu / count * 1000, 3),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {0})  # the boxes and the SSE client
    with tempfile.TemporaryDirectory(prefix="bench-alarms-") as tmp:
        gw = GatewayProcess(Path(tmp), CONFIG, env={"SHARPEYES_ADMIN_TOKEN": ADMIN_TOKEN})
        with gw:
            assert gw.proc is not None
            os.sched_setaffinity(gw.proc.pid, {1})  # the gateway: one core
            for thread in psutil.Process(gw.proc.pid).threads():
                os.sched_setaffinity(thread.id, {1})
            device = {"name": "box", "school": "椿树小学", "region": "341502", "secret": SECRET}
            linked = gw.post(
                "/api/v1/alarm-devices", json={**device, "id": LINKED_BOX, "cameras": [GATE, YARD]}
            )
            assert linked.status_code == 201, linked.text
            for n in range(1, args.concurrency + 1):
                assert (
                    gw.post("/api/v1/alarm-devices", json={**device, "id": box_id(n)}).status_code
                    == 201
                )
            reader = StreamReader(f"{gw.base_url}/api/v1/events/stream?type=emergency")
            reading = asyncio.create_task(reader.run())
            await asyncio.wait_for(reader.open.wait(), 20)
            result = {"latency": await latency(gw, reader, args.latency_alarms, args.interval)}
            await asyncio.sleep(IDLE_STOP + 1)
            result["throughput"] = await throughput(gw, reader, args.concurrency, args.seconds)
            reading.cancel()
        result["anchor_eventlog"] = await anchor(Path(tmp) / "anchor", args.anchor_events)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-alarms", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--anchor-events", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="one JSON object, nothing else")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome, indent=None if arguments.json else 2, ensure_ascii=False))
