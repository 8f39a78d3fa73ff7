"""The alarm workflow: intake, camera linkage, acknowledgement and close, device liveness.

Every alarm is one event in the event log (:mod:`gateway.eventlog`), which is the alarm's
only record: each step — raised, linked, re-notified, cancelled at the box, acknowledged,
closed — is a new version of that event, persisted before it is published, so whoever
follows the bus (the SSE stream, the Redis Stream, webhooks, the wall) sees every step, and
a gateway restart loses none. The box gets its answer only after the alarm is persisted.

Event data of an alarm (``source: "alarm"``, type ``emergency``, ``tamper`` or ``test``):
``state`` (raised → acknowledged → closed), ``test`` (true only for drills: present on
every event this module writes, so a consumer can never mistake a drill for an emergency),
the device's name, school, sector, region, location and phones as they were when the alarm
came in, ``cameras`` (linked cameras, in order, with names), then ``linkage`` (per camera:
its evidence hold and snapshot) once the linkage has run, ``renotified``, ``cancelled_at``,
``acknowledged_*``, ``closed_*`` and ``disposition``.

Linkage runs after the box has its answer (snapshots of idle cameras take seconds); an
alarm whose linkage a restart interrupted is linked again at start. Each linked camera also
gets an ``alarm_linkage`` event of its own (camera, hold, snapshot as its thumbnail), so
the alarm shows up in that camera's history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.alarms.device import MAX_CAMERAS, AlarmDevice
from adapters.alarms.message import LINKED, RAISING, AlarmMessage, AlarmType, parse
from adapters.alarms.signature import (
    MemoryReplayCache,
    RedisReplayCache,
    ReplayCache,
    check_replay,
    replay_key,
    verify,
    verify_token,
)
from gateway.alarms.store import AlarmStore
from gateway.alarms.stream import EventStream
from gateway.alarms.webhooks import Webhooks
from gateway.bus import Event
from gateway.errors import Conflict, GatewayError, InvalidInput, NotFound
from gateway.eventlog import EventLog, Record
from gateway.redact import redact
from gateway.settings import AlarmSettings

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

SOURCE = "alarm"
LINKAGE = "alarm_linkage"
DEVICE_ONLINE = "device_online"
DEVICE_OFFLINE = "device_offline"
ALARM_TYPES = frozenset(t.value for t in RAISING)
EVENT_TYPES = ALARM_TYPES | {LINKAGE, DEVICE_ONLINE, DEVICE_OFFLINE}
MAX_DISPOSITION = 2000


class State(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request offers as proof: a signature (with its timestamp) or a query token."""

    timestamp: str | None = None
    signature: str | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """The box's answer: what was understood, and the alarm's id to quote on the phone."""

    type: AlarmType
    event_id: str | None = None
    cancelled: tuple[str, ...] = ()


def region_of(record: Record) -> str | None:
    """The region an alarm-source event belongs to (for scope checks)."""
    region = record.data.get("region")
    return region if isinstance(region, str) else None


class AlarmService:
    """One per gateway (``Gateway.alarms``), created with it; ``await start()`` once the
    catalog, recorder and hub are up, ``await close()`` before they go."""

    def __init__(self, gateway: Gateway, settings: AlarmSettings) -> None:
        self._gateway = gateway
        self.settings = settings
        self.events: EventLog = gateway.events
        self.store = AlarmStore(Path(gateway.settings.data_dir) / "catalog.sqlite3")
        redis = gateway.settings.redis_url
        # With Redis, every node shares the replay cache: a request replayed to another
        # node is refused too.
        self._replay: ReplayCache = (
            RedisReplayCache(redis.get_secret_value()) if redis else MemoryReplayCache()
        )
        self.stream = EventStream(gateway.bus, gateway.events)
        self.webhooks = Webhooks(settings, gateway.bus)
        # Alarm changes are read-check-write on the event log: one at a time, so two
        # operators acknowledging together get one success and one clear refusal.
        self._changing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._scanner: asyncio.Task[None] | None = None
        self._started = time.time()

    async def start(self) -> None:
        self._started = time.time()
        await self.store.start()
        await self.webhooks.start()
        for record in await self.open_alarms():
            if record.type in LINKED and "linkage" not in record.data:
                log.info("alarm %s: linking the cameras the restart interrupted", record.id)
                self._spawn(self._link(record))
        self._scanner = asyncio.get_running_loop().create_task(self._scan_loop(), name="alarms")

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._scanner] if self._scanner else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.webhooks.close()
        await self._replay.close()
        await self.store.close()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The alarm itself is safe in the event log; its linkage is redone at start.
            log.error("alarm linkage failed", exc_info=task.exception())

    # --- intake ----------------------------------------------------------------------------

    async def receive(self, ref: str, body: bytes, credentials: Credentials) -> Receipt:
        """An alarm request from a box: authenticate, persist, answer."""
        device = await self.store.get(ref)
        now = time.time()
        if credentials.token is not None and credentials.signature is None:
            verify_token(device.token_hash, credentials.token)
            redact.add(credentials.token)  # masked in any log line that prints the URL
            via = "token"
        else:
            window = self.settings.replay_window
            sent = verify(
                device.secret,
                body,
                credentials.timestamp,
                credentials.signature,
                window=window,
                now=now,
            )
            assert credentials.signature is not None  # verify() refuses a request without
            await check_replay(
                self._replay, replay_key(device.id, credentials.signature), sent, window
            )
            via = "signature"
        message = parse(body)
        # Any authentic message is a sign of life, not only heartbeats.
        if await self.store.touch(device.id, now) is not True:
            await self._liveness(device, DEVICE_ONLINE, now)
        if message.type is AlarmType.HEARTBEAT:
            return Receipt(message.type)
        if message.type is AlarmType.CANCEL:
            return Receipt(message.type, cancelled=tuple(await self._cancel(device, via, now)))
        record = await self._raise(device, message, via=via, now=now)
        return Receipt(message.type, event_id=record.id)

    async def test(self, device_id: str, actor: str) -> Record:
        """A drill started from the console (an integrator checking an installation)."""
        device = await self.store.get(device_id)
        message = AlarmMessage(AlarmType.TEST, info={"started_by": actor})
        return await self._raise(device, message, via="console", now=time.time())

    async def _raise(
        self, device: AlarmDevice, message: AlarmMessage, *, via: str, now: float
    ) -> Record:
        names: dict[str, str] = {}
        if device.cameras:  # a box without cameras costs no catalog round trip
            found, _ = await self._gateway.store.list_cameras(ids=device.cameras, limit=MAX_CAMERAS)
            names = {camera.id: camera.name for camera in found}
        data = {
            **_device_data(device),
            "state": State.RAISED.value,
            "test": message.type is AlarmType.TEST,
            "cameras": [{"id": c, "name": names[c]} for c in device.cameras if c in names],
            "via": via,
            "nonce": message.nonce,
            "device_time": message.device_time,
            "info": dict(message.info),
        }
        event = Event(
            type=message.type.value, source=SOURCE, device=device.id, start=now, data=data
        )
        record = await self.events.record(event)
        log.warning(
            "alarm %s: %s%s from %s (%s, %s)",
            record.id,
            message.type.value,
            " (test)" if data["test"] else "",
            device.id,
            device.school,
            device.location or "no location",
        )
        if message.type in LINKED:
            self._spawn(self._link(record))
        return record

    async def _cancel(self, device: AlarmDevice, via: str, now: float) -> list[str]:
        """The person at the box called it off: noted on its open alarms, which an operator
        still acknowledges and closes (a cancel may be made under duress)."""
        cancelled = []
        async with self._changing:
            for record in await self.open_alarms():
                if record.device == device.id and "cancelled_at" not in record.data:
                    data = {"cancelled_at": now, "cancelled_via": via}
                    await self.events.update(record.id, end=None, data=data)
                    cancelled.append(record.id)
        log.warning("device %s: cancel from the box; open alarms: %s", device.id, cancelled)
        return cancelled

    # --- linkage ---------------------------------------------------------------------------

    async def _link(self, alarm: Record) -> None:
        cameras = [c["id"] for c in alarm.data.get("cameras", [])]
        results = await asyncio.gather(*(self._link_camera(alarm, c) for c in cameras))
        thumbnail = next((jpeg for _, jpeg in results if jpeg), None)
        async with self._changing:
            current = await self.events.get(alarm.id)
            await self.events.update(
                alarm.id,
                end=current.end,
                data={"linkage": [entry for entry, _ in results]},
                thumbnail=thumbnail,
            )

    async def _link_camera(
        self, alarm: Record, camera_id: str
    ) -> tuple[dict[str, Any], bytes | None]:
        test = bool(alarm.data.get("test"))
        entry: dict[str, Any] = {"camera": camera_id}
        reason = (
            f"{'TEST ' if test else ''}{alarm.type} alarm {alarm.id} from {alarm.device} "
            f"({alarm.data.get('school', '')})"
        )
        start = alarm.start - self.settings.hold_before
        end = alarm.start + self.settings.hold_after
        try:
            hold = await self._gateway.recorder.add_hold(camera_id, start, end, reason)
            entry["hold"] = {"id": hold.id, "start": hold.start, "end": hold.end}
        except GatewayError as exc:
            entry["hold_error"] = exc.message
            log.error("alarm %s: no evidence hold on camera %s: %s", alarm.id, camera_id, exc)
        jpeg = None
        try:
            jpeg = await self._snapshot(camera_id)
        except GatewayError as exc:
            entry["snapshot_error"] = exc.message
            log.warning("alarm %s: no snapshot of camera %s: %s", alarm.id, camera_id, exc)
        child = await self.events.record(
            Event(
                type=LINKAGE,
                source=SOURCE,
                camera=camera_id,
                device=alarm.device,
                start=alarm.start,
                end=alarm.start,
                data={
                    "alarm_id": alarm.id,
                    "alarm_type": alarm.type,
                    "test": test,
                    "region": alarm.data.get("region"),
                    **entry,
                },
            ),
            thumbnail=jpeg,
        )
        entry["event_id"] = child.id
        if jpeg is not None:
            entry["snapshot"] = f"/api/v1/alarms/{alarm.id}/cameras/{camera_id}/snapshot.jpg"
        return entry, jpeg

    async def _snapshot(self, camera_id: str) -> bytes:
        gateway = self._gateway
        camera = await gateway.store.get_camera(camera_id)
        timeout = self.settings.snapshot_timeout
        try:
            return await asyncio.wait_for(
                gateway.onvif.snapshot(camera, gateway.stream(camera_id)), timeout
            )
        except TimeoutError:
            raise GatewayError(
                f"no picture within {timeout:g} s", code="snapshot_timeout"
            ) from None

    async def snapshot_path(self, alarm_id: str, camera_id: str) -> Path:
        """The stored snapshot of a linked camera (the thumbnail of its linkage event)."""
        alarm = await self.alarm(alarm_id)
        for entry in alarm.data.get("linkage", []):
            if entry.get("camera") == camera_id and entry.get("event_id"):
                path = await self.events.thumbnail(entry["event_id"])
                if path is not None:
                    return path
        raise NotFound(f"alarm {alarm_id} has no snapshot of camera {camera_id}")

    # --- workflow --------------------------------------------------------------------------

    async def alarm(self, event_id: str) -> Record:
        record = await self.events.get(event_id)
        if record.source != SOURCE or record.type not in ALARM_TYPES:
            raise NotFound(f"alarm {event_id} does not exist")
        return record

    async def open_alarms(self) -> list[Record]:
        """Alarms not closed yet, newest first."""
        return [r for r in await self.events.open_events(source=SOURCE) if r.type in ALARM_TYPES]

    async def acknowledge(self, event_id: str, actor: str, note: str = "") -> Record:
        async with self._changing:
            record = await self.alarm(event_id)
            state = record.data.get("state")
            if state == State.CLOSED:
                raise Conflict(f"alarm {event_id} is closed", code="alarm_closed")
            if state == State.ACKNOWLEDGED:
                raise Conflict(
                    f"alarm {event_id} was already acknowledged by "
                    f"{record.data.get('acknowledged_by')}",
                    code="alarm_already_acknowledged",
                )
            data = {
                "state": State.ACKNOWLEDGED.value,
                "acknowledged_at": time.time(),
                "acknowledged_by": actor,
                "acknowledge_note": note.strip(),
            }
            updated = await self.events.update(event_id, end=None, data=data)
        log.info("alarm %s acknowledged by %s", event_id, actor)
        return updated

    async def close_alarm(self, event_id: str, actor: str, disposition: str) -> Record:
        disposition = disposition.strip()
        if not disposition:
            raise InvalidInput("a closed alarm needs a disposition note", field="disposition")
        if len(disposition) > MAX_DISPOSITION:
            raise InvalidInput(
                f"disposition: at most {MAX_DISPOSITION} characters", field="disposition"
            )
        async with self._changing:
            record = await self.alarm(event_id)
            state = record.data.get("state")
            if state == State.CLOSED:
                raise Conflict(f"alarm {event_id} is already closed", code="alarm_closed")
            if state == State.RAISED:
                raise Conflict(
                    f"acknowledge alarm {event_id} before closing it",
                    code="alarm_not_acknowledged",
                )
            now = time.time()
            data = {
                "state": State.CLOSED.value,
                "closed_at": now,
                "closed_by": actor,
                "disposition": disposition,
            }
            updated = await self.events.update(event_id, end=now, data=data)
        log.info("alarm %s closed by %s", event_id, actor)
        return updated

    # --- liveness and re-notification ---------------------------------------------------

    async def _liveness(self, device: AlarmDevice, kind: str, now: float) -> None:
        data = {**_device_data(device), "test": False, "last_seen": device.last_seen}
        event = Event(type=kind, source=SOURCE, device=device.id, start=now, end=now, data=data)
        await self.events.record(event)
        (log.warning if kind == DEVICE_OFFLINE else log.info)(
            "alarm device %s (%s): %s", device.id, device.school, kind.replace("_", " ")
        )

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.scan_interval)
            try:
                await self.scan(time.time())
            except Exception:  # a failed round (disk, bus) must not end the checks
                log.exception(
                    "alarm checks failed; next round in %g s", self.settings.scan_interval
                )

    async def scan(self, now: float) -> None:
        """One round: silent devices go offline, unacknowledged alarms are notified again."""
        s = self.settings
        silent = await self.store.mark_offline(
            now,
            default_interval=s.heartbeat_interval,
            missed=s.offline_after_missed,
            since=self._started,
        )
        for device in silent:
            await self._liveness(device, DEVICE_OFFLINE, now)
        for record in await self.open_alarms():
            if _due(record.data, record.start, now, s.renotify_after, s.renotify_limit):
                await self._renotify(record.id, now)

    async def _renotify(self, event_id: str, now: float) -> None:
        s = self.settings
        async with self._changing:
            record = await self.events.get(event_id)  # it may have changed since the scan
            if not _due(record.data, record.start, now, s.renotify_after, s.renotify_limit):
                return
            count = int(record.data.get("renotified", 0)) + 1
            data = {"renotified": count, "notified_at": now}
            await self.events.update(event_id, end=record.end, data=data)
        log.warning("alarm %s still unacknowledged: notified again (%d)", event_id, count)


def _due(data: Mapping[str, Any], start: float, now: float, after: float, limit: int) -> bool:
    return (
        data.get("state") == State.RAISED
        and int(data.get("renotified", 0)) < limit
        and now - float(data.get("notified_at", start)) >= after
    )


def _device_data(device: AlarmDevice) -> dict[str, Any]:
    return {
        "device_name": device.name,
        "school": device.school,
        "sector": device.sector.value,
        "region": device.region,
        "location": device.location,
        "phones": list(device.phones),
    }
