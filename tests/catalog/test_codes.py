"""GB/T 28181 device codes and GB/T 2260 region codes."""

from __future__ import annotations

import pytest

from gateway.catalog.codes import (
    ALARM_INPUT_TYPES,
    CAMERA_TYPES,
    DEVICE_TYPES,
    FRONT_END_TYPES,
    InvalidDeviceCode,
    InvalidRegionCode,
    RegionLevel,
    is_within,
    parse_device_code,
    parse_region_code,
)
from gateway.errors import InvalidInput

# --- device codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "centre", "industry", "type_code", "serial", "kind"),
    [
        # prefecture-level centre (芜湖), the usual example in the standard's annex
        ("34020000001320000001", "34020000", "00", 132, "0000001", "IP camera"),
        # provincial centre: prefecture, county and basic unit all padded with zeros
        ("11000000001310000001", "11000000", "00", 131, "0000001", "camera"),
        # county-level centre with a basic unit, industry 11 (education)
        ("44010699111180000123", "44010699", "11", 118, "0000123", "NVR"),
        ("34020200041349999999", "34020200", "04", 134, "9999999", "alarm input"),
        ("82000000001110000001", "82000000", "00", 111, "0000001", "DVR"),
    ],
)
def test_valid_device_codes(
    code: str, centre: str, industry: str, type_code: int, serial: str, kind: str
) -> None:
    parsed = parse_device_code(code)
    assert parsed.code == code
    assert parsed.centre == centre
    assert parsed.division == centre[:6]
    assert parsed.industry == industry
    assert parsed.type_code == type_code
    assert parsed.serial == serial
    assert parsed.kind == kind
    assert parsed.is_camera == (type_code in CAMERA_TYPES)


@pytest.mark.parametrize(
    ("code", "part", "message"),
    [
        ("3402000000132000001", "format", "20 ASCII digits"),
        ("340200000013200000011", "format", "got 21 characters"),
        ("3402000000132000000a", "format", "not all digits"),
        ("３４020000001320000001", "format", "not all digits"),  # fullwidth digits
        ("", "format", "got 0 characters"),
        ("99020000001320000001", "province", "province code 99 (digits 1-2)"),
        ("00000000001320000001", "province", "province code 00 (digits 1-2)"),
        ("34001200001320000001", "prefecture", "no prefecture (digits 3-4: 00)"),
        ("34020012001320000001", "centre", "basic unit (digits 7-8: 12)"),
        ("34000001001320000001", "centre", "basic unit (digits 7-8: 01)"),
        (
            "34020000009990000001",
            "type_code",
            "type code 999 (digits 11-13) is not a GB/T 28181 device type",
        ),
        ("34020000001190000001", "type_code", "type code 119 (digits 11-13)"),  # extension
        ("34020000000000000001", "type_code", "type code 000 (digits 11-13)"),
    ],
)
def test_invalid_device_codes_name_the_part(code: str, part: str, message: str) -> None:
    with pytest.raises(InvalidDeviceCode) as caught:
        parse_device_code(code)
    assert caught.value.part == part
    assert message in str(caught.value)
    assert caught.value.field == "id"


def test_device_code_error_is_a_422_value_error() -> None:
    with pytest.raises(ValueError) as caught:
        parse_device_code("nope", field="camera_id")
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert (error.status, error.code, error.field) == (422, "invalid_device_code", "camera_id")


def test_type_tables() -> None:
    assert CAMERA_TYPES == {131, 132}
    assert ALARM_INPUT_TYPES == {134}
    assert CAMERA_TYPES | ALARM_INPUT_TYPES <= FRONT_END_TYPES
    assert {111, 118, 130, 139, 143} <= FRONT_END_TYPES
    assert not FRONT_END_TYPES & {200, 215, 216, 300, 400, 500}
    for type_code, device_type in DEVICE_TYPES.items():
        code = f"3402000000{type_code:03d}0000001"
        assert parse_device_code(code).kind == device_type.kind


# --- region codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("340202", RegionLevel.COUNTY, None),
        ("110101", RegionLevel.COUNTY, None),
        ("429004", RegionLevel.COUNTY, None),  # a county directly under the province (90)
        ("340202001", RegionLevel.TOWNSHIP, "340202"),
        ("340202001001", RegionLevel.VILLAGE, "340202001"),
        ("820001100200", RegionLevel.VILLAGE, "820001100"),
    ],
)
def test_region_levels_and_parents(code: str, level: RegionLevel, parent: str | None) -> None:
    parsed = parse_region_code(code)
    assert (parsed.code, parsed.level, parsed.parent) == (code, level, parent)


@pytest.mark.parametrize(
    ("code", "part", "message"),
    [
        ("34020", "format", "got 5 characters"),
        ("3402020010", "format", "6 (county), 9 (township) or 12 (village)"),
        ("34020a", "format", "not all digits"),
        ("990101", "province", "province code 99"),
        ("340000", "county", "340000 is a province, not a county"),
        ("340200", "county", "340200 is a prefecture-level division, not a county"),
        ("340200001", "county", "prefecture-level division"),
        ("340012", "prefecture", "no prefecture"),
        ("340202000", "township", "township digits 7-9"),
        ("340202000001", "township", "township digits 7-9"),
        ("340202001000", "village", "village digits 10-12"),
    ],
)
def test_invalid_region_codes_name_the_part(code: str, part: str, message: str) -> None:
    with pytest.raises(InvalidRegionCode) as caught:
        parse_region_code(code)
    assert caught.value.part == part
    assert message in str(caught.value)
    assert (caught.value.code, caught.value.field) == ("invalid_region_code", "region")


@pytest.mark.parametrize(
    ("code", "ancestor", "within"),
    [
        ("340202", "340202", True),
        ("340202001", "340202", True),
        ("340202001001", "340202", True),
        ("340202001001", "340202001", True),
        ("340202002001", "340202001", False),
        ("340203001", "340202", False),
        ("340202", "340202001", False),
    ],
)
def test_is_within(code: str, ancestor: str, within: bool) -> None:
    assert is_within(code, ancestor) is within


def test_is_within_validates_both_codes() -> None:
    with pytest.raises(InvalidRegionCode):
        is_within("340202001", "3402")
    with pytest.raises(InvalidRegionCode):
        is_within("34020200", "340202")


def test_hong_kong_and_macau_districts_have_no_prefecture_level() -> None:
    assert parse_region_code("810001").level is RegionLevel.COUNTY
    assert parse_device_code("82000100001320000001").division == "820001"
    with pytest.raises(InvalidRegionCode):
        parse_region_code("710001")  # only 81 and 82 skip the prefecture level
