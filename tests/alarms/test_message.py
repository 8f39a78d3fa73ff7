"""The alarm body: what boxes send, what the gateway refuses and why."""

from __future__ import annotations

import pytest

from adapters.alarms.errors import InvalidAlarm
from adapters.alarms.message import AlarmType, encode, parse


def test_round_trip() -> None:
    body = encode(AlarmType.EMERGENCY, nonce="n1", device_time=1.5, info={"按钮": 2})
    got = parse(body)
    assert got.type is AlarmType.EMERGENCY and got.nonce == "n1" and got.device_time == 1.5
    assert got.info == {"按钮": 2}
    assert parse(b'{"type":"heartbeat"}').info == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", None),
        (b"[1]", None),
        (b'{"type":"fire"}', "type"),
        (b"{}", "type"),
        (b'{"type":"test","color":"red"}', "color"),
        (b'{"type":"test","nonce":""}', "nonce"),
        (b'{"type":"test","nonce":7}', "nonce"),
        (b'{"type":"test","time":"yesterday"}', "time"),
        (b'{"type":"test","time":true}', "time"),
        (b'{"type":"test","info":[1]}', "info"),
        (b'{"type":"test","info":{"x":"' + b"y" * 5000 + b'"}}', "info"),
        (b"\xff\xfe", None),
    ],
)
def test_refused_with_the_field_named(body: bytes, field: str | None) -> None:
    with pytest.raises(InvalidAlarm) as caught:
        parse(body)
    assert caught.value.field == field and caught.value.code == "invalid_alarm"
