"""The body of an alarm request, as boxes send it and the gateway reads it.

``{"type": "emergency", "nonce": "a1b2", "time": 1732190000.5, "info": {"button": 1}}``

- ``type`` (required): ``emergency`` (the button was pressed), ``tamper`` (the box was
  opened or torn off), ``heartbeat`` (I am alive), ``test`` (a drill: the whole path runs
  and everything is marked as a test), ``cancel`` (the person at the box called it off).
- ``nonce``: any string up to 64 characters, different for every send. Two identical
  messages signed in the same second would otherwise look like a replay.
- ``time``: when the box saw it, epoch seconds; kept as ``device_time`` (the gateway's own
  clock dates the alarm: a box's clock may be wrong).
- ``info``: vendor details (button number, battery, firmware), a JSON object up to 4 KiB,
  passed through to the event.

Any other key is refused, so a typo shows up while the box is being installed rather than
as a silently missing detail in an emergency.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from adapters.alarms.errors import InvalidAlarm


class AlarmType(StrEnum):
    EMERGENCY = "emergency"
    TAMPER = "tamper"
    HEARTBEAT = "heartbeat"
    TEST = "test"
    CANCEL = "cancel"


# Types that raise an alarm an operator must acknowledge and close.
RAISING: frozenset[AlarmType] = frozenset({AlarmType.EMERGENCY, AlarmType.TAMPER, AlarmType.TEST})
# Types that bring up the linked cameras (holds, snapshots, the wall's pop-up). A tamper
# alarm is about the box itself, not a person in danger, so it does not.
LINKED: frozenset[AlarmType] = frozenset({AlarmType.EMERGENCY, AlarmType.TEST})

MAX_NONCE = 64
MAX_INFO_BYTES = 4096
_KEYS = frozenset({"type", "nonce", "time", "info"})


@dataclass(frozen=True, slots=True)
class AlarmMessage:
    type: AlarmType
    nonce: str | None = None
    device_time: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


def parse(body: bytes) -> AlarmMessage:
    """Read an (already authenticated) body; raise :class:`InvalidAlarm` naming the field."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidAlarm("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidAlarm("the body must be a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InvalidAlarm(
            f"unknown key {unknown[0]!r}: the keys are type, nonce, time and info "
            "(vendor details go inside info)",
            field=unknown[0],
        )
    try:
        kind = AlarmType(str(data.get("type")))
    except ValueError:
        allowed = ", ".join(t.value for t in AlarmType)
        raise InvalidAlarm(f"type must be one of: {allowed}", field="type") from None
    nonce = data.get("nonce")
    if nonce is not None and not (isinstance(nonce, str) and 0 < len(nonce) <= MAX_NONCE):
        raise InvalidAlarm(f"nonce must be a string of 1 to {MAX_NONCE} characters", field="nonce")
    sent = data.get("time")
    if sent is not None and (
        isinstance(sent, bool) or not isinstance(sent, int | float) or not math.isfinite(sent)
    ):
        raise InvalidAlarm("time must be a number: seconds since the Unix epoch", field="time")
    info = data.get("info", {})
    if not isinstance(info, dict):
        raise InvalidAlarm("info must be a JSON object", field="info")
    if len(json.dumps(info, ensure_ascii=False).encode()) > MAX_INFO_BYTES:
        raise InvalidAlarm(f"info must be at most {MAX_INFO_BYTES} bytes of JSON", field="info")
    return AlarmMessage(kind, nonce, None if sent is None else float(sent), info)


def encode(
    kind: AlarmType | str,
    *,
    nonce: str | None = None,
    device_time: float | None = None,
    info: Mapping[str, Any] | None = None,
) -> bytes:
    """A body as a box sends it (the reference for vendors, the tests and the benchmark)."""
    body: dict[str, Any] = {"type": str(kind)}
    if nonce is not None:
        body["nonce"] = nonce
    if device_time is not None:
        body["time"] = device_time
    if info:
        body["info"] = dict(info)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
