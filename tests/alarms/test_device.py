"""The alarm device record: GB/T 28181 type 134, write-only secret, field checks."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from adapters.alarms.device import AlarmDevice
from gateway.catalog.codes import InvalidDeviceCode
from gateway.errors import InvalidInput
from gateway.redact import RedactingFilter

BOX = "34150200001340000001"
SECRET = "box-secret-0123456789"


def device(**changes: Any) -> AlarmDevice:
    base = AlarmDevice(id=BOX, name="一键报警 1", school="椿树小学", region="341502", secret=SECRET)
    return replace(base, **changes)


def test_valid_device_defaults_to_education() -> None:
    d = device(cameras=("34150200001320000001", "34150200001320000001"), phones=("+86 564 1234",))
    assert d.sector.value == "education" and d.cameras == ("34150200001320000001",)
    assert SECRET not in repr(d) and "secret" not in d.public()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "34150200001320000001"}, "id"),  # a camera's type code, not 134
        ({"region": "340000"}, "region"),
        ({"name": "  "}, "name"),
        ({"serial": "34150200001340000002"}, "serial"),  # 20 digits: read as a code
        ({"serial": "has space"}, "serial"),
        ({"cameras": ("123",)}, "cameras"),
        ({"cameras": tuple(f"341502000013200000{n:02d}" for n in range(1, 18))}, "cameras"),
        ({"phones": ("call me",)}, "phones"),
        ({"secret": "short"}, "secret"),
        ({"heartbeat_interval": 1.0}, "heartbeat_interval"),
        ({"sector": "army"}, "sector"),
    ],
)
def test_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        device(**changes)
    assert caught.value.field == field


def test_type_code_error_names_alarm_input() -> None:
    with pytest.raises(InvalidDeviceCode, match="134 \\(alarm input\\)"):
        device(id="34150200001320000001")


def test_secret_is_masked_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "a-fresh-secret-for-this-test"
    device(secret=secret)
    logger = logging.getLogger("test.alarms.device")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("the box said %s", secret)
    assert secret not in caplog.text and "***" in caplog.text
