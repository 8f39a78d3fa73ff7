"""ONVIF alarms (PullPoint, ONVIF Core §9.1) onto the gateway's event bus.

One :class:`PullPointWatcher` per camera: it creates a PullPoint subscription, long-polls
PullMessages, renews the subscription before it terminates, and when anything fails —
the device rebooted and forgot the subscription, the network dropped, the renewal was
refused — it backs off and subscribes anew on a fresh session. onvif-zeep-async's
``PullPointManager`` is not used: it leaves the pull loop to the caller anyway, reports a
lost subscription only through a callback, and waits a fixed 40 s before re-subscribing.

Alarms map onto the bus vocabulary by topic (the prefix such as ``tns1:`` varies by vendor
and is ignored): motion → ``motion``, tamper → ``occlusion``, digital inputs →
``alarm_input``. A bus event opens when the alarm goes active (``end`` None) and a second
event with the same ``start`` and an ``end`` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from adapters.onvif.device import OnvifDevice
from gateway.bus import Event
from gateway.errors import GatewayError
from gateway.eventlog import EventLog

log = logging.getLogger(__name__)

SOURCE = "onvif"
PULLPOINT = "PullPointSubscription"
# Topic (without namespace prefixes) → bus event type; the data items that carry the state.
TOPICS: dict[str, str] = {
    "RuleEngine/CellMotionDetector/Motion": "motion",
    "RuleEngine/MotionRegionDetector/Motion": "motion",
    "VideoSource/MotionAlarm": "motion",
    "RuleEngine/TamperDetector/Tamper": "occlusion",
    "Device/Trigger/DigitalInput": "alarm_input",
    "Device/IO/DigitalInput": "alarm_input",
}
STATE_ITEMS = ("IsMotion", "IsTamper", "LogicalState", "State")
_TRUE = frozenset({"true", "1", "active", "on"})


@dataclass(frozen=True, slots=True)
class Alarm:
    type: str
    active: bool
    topic: str
    source: dict[str, str]  # e.g. {"InputToken": "DI_1"}
    at: float  # the device's UtcTime, or ours when it sent none


def normalise_topic(topic: str) -> str:
    """``tns1:RuleEngine/Foo/Bar//.`` → ``RuleEngine/Foo/Bar``: vendors vary the prefixes."""
    segments = [part.rpartition(":")[2] for part in topic.strip().split("/")]
    return "/".join(s for s in segments if s and s != ".")


def _items(group: Any) -> dict[str, str]:
    items = getattr(group, "SimpleItem", None) or []
    return {str(item.Name): str(item.Value) for item in items}


def parse_notification(notification: Any) -> Alarm | None:
    """The alarm in one wsnt:NotificationMessage, or None if it is not one we map."""
    topic_node = notification.Topic
    topic = normalise_topic(str(getattr(topic_node, "_value_1", topic_node) or ""))
    kind = TOPICS.get(topic)
    message = getattr(notification.Message, "_value_1", None)
    if kind is None or message is None:
        return None
    if getattr(message, "PropertyOperation", None) == "Deleted":
        return None
    data = _items(message.Data)
    state = next((data[name] for name in STATE_ITEMS if name in data), None)
    if state is None:
        return None
    utc = getattr(message, "UtcTime", None)
    return Alarm(
        type=kind,
        active=state.strip().lower() in _TRUE,
        topic=topic,
        source=_items(message.Source),
        at=utc.timestamp() if utc is not None else time.time(),
    )


@dataclass(slots=True)
class WatcherStatus:
    state: str = "starting"  # subscribed | retrying | stopped
    message: str = ""
    subscriptions: int = 0  # PullPoint subscriptions created, all time
    renewals: int = 0
    alarms: int = 0


class PullPointWatcher:
    def __init__(
        self,
        camera_id: str,
        connect: Callable[[], Awaitable[OnvifDevice]],
        events: EventLog,
        *,
        pull_timeout: float = 10.0,
        ttl: float = 120.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.camera_id = camera_id
        self.status = WatcherStatus()
        self._connect = connect
        self._events = events
        self._pull_timeout = pull_timeout
        self._ttl = ttl
        self._backoff = (backoff_initial, backoff_max)
        # alarm key → id of its open event in the event log
        self._open: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"onvif events {self.camera_id}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.status.state = "stopped"

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                async with await self._connect() as device:
                    await self._subscription(device)
            except GatewayError as exc:
                message = exc.message
            except Exception as exc:  # a library bug must not end the watcher
                log.exception("camera %s: unexpected error in the ONVIF events", self.camera_id)
                message = f"internal error: {exc!r}"
            if self.status.state == "subscribed":
                failures = 0  # it worked until now: start the backoff afresh
            initial, most = self._backoff
            delay = min(most, initial * 2**failures) * random.uniform(0.8, 1.2)
            failures += 1
            self.status.state, self.status.message = "retrying", message
            log.warning(
                "camera %s: ONVIF events lost (%s); subscribing again in %.1f s",
                self.camera_id,
                message,
                delay,
            )
            await asyncio.sleep(delay)

    async def _subscription(self, device: OnvifDevice) -> None:
        loop = asyncio.get_running_loop()
        reply = await device.call(
            "events", "CreatePullPointSubscription", {"InitialTerminationTime": self._duration()}
        )
        address = reply.SubscriptionReference.Address._value_1
        events_ns = "http://www.onvif.org/ver10/events/wsdl"
        device.camera.xaddrs[f"{events_ns}/{PULLPOINT}"] = address
        self.status.subscriptions += 1
        self.status.state, self.status.message = "subscribed", ""
        renew_at = loop.time() + self._renew_after(reply)
        try:
            while True:
                if loop.time() >= renew_at:
                    reply = await device.call(
                        "subscription",
                        "Renew",
                        {"TerminationTime": self._duration()},
                        port_type=PULLPOINT,
                    )
                    self.status.renewals += 1
                    renew_at = loop.time() + self._renew_after(reply)
                wait = max(1.0, min(self._pull_timeout, renew_at - loop.time()))
                messages = await device.call(
                    "pullpoint",
                    "PullMessages",
                    {"Timeout": f"PT{wait:.0f}S", "MessageLimit": 64},
                    port_type=PULLPOINT,
                    timeout=wait + device.timeout,
                )
                for notification in messages.NotificationMessage or ():
                    alarm = parse_notification(notification)
                    if alarm is not None:
                        await self._alarm(alarm)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # a courtesy: it expires anyway
                async with asyncio.timeout(2):
                    await device.call("subscription", "Unsubscribe", port_type=PULLPOINT)
            raise

    def _duration(self) -> str:
        return f"PT{self._ttl:.0f}S"

    def _renew_after(self, reply: Any) -> float:
        """80 % of the granted lifetime (the device may grant less than asked)."""
        current, terminates = getattr(reply, "CurrentTime", None), reply.TerminationTime
        granted = (terminates - current).total_seconds() if current and terminates else self._ttl
        return max(1.0, 0.8 * min(granted, self._ttl))

    async def _alarm(self, alarm: Alarm) -> None:
        key = (alarm.type, tuple(sorted(alarm.source.items())))
        if alarm.active:
            if key in self._open:
                return  # still active: an "Initialized" repeat after re-subscribing
            self.status.alarms += 1
            # Persisted before it is published (event log), then closed by update: one
            # logical event per alarm, as the analytics faults are.
            record = await self._events.record(
                Event(
                    type=alarm.type,
                    source=SOURCE,
                    camera=self.camera_id,
                    start=alarm.at,
                    data={"topic": alarm.topic, **alarm.source},
                )
            )
            self._open[key] = record.id
        else:
            event_id = self._open.pop(key, None)
            if event_id is None:
                return  # the end of an alarm we never saw begin, or an idle initial state
            await self._events.update(event_id, end=alarm.at)
