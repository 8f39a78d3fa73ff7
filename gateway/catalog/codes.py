"""GB/T 28181 device codes and GB/T 2260 region codes.

Device code (GB/T 28181 Annex D, "编码规则 A"): 20 decimal digits ::

    digits  1-8   centre code   监控中心编码: the GB/T 2260 division of the monitoring centre
                                (1-2 province, 3-4 prefecture, 5-6 county) + 7-8 basic unit
    digits  9-10  industry code 行业编码
    digits 11-13  type code     类型编码
    digits 14-20  serial        序号

Region code: a GB/T 2260 county (6 digits), extended by the statistical division scheme to a
township (9 digits: county + 3) and a village (12 digits: township + 3). The catalog's region
tree is county ▸ township ▸ village, so a region code's parent is its prefix one level up.

What is checked, and why no more:

* Province (digits 1-2) must be one of GB/T 2260's province codes. Below the province the
  list of divisions changes every year, so no table is embedded; instead the structure is
  checked. The standard fills a code from the left and pads the unused levels with zeros
  ("当不是基层单位时空余位为0"), so a zero level cannot be followed by a non-zero one:
  ``340012`` (a county under no prefecture; only Hong Kong's and Macau's districts,
  ``81``/``82``, sit directly under the province) and a basic unit under a
  prefecture-level centre (``34010012``) are impossible. A device's centre may sit at any level, so
  ``34000000`` (provincial centre) and ``34010000`` (prefecture) are valid centre codes.
* A region code must name a county or below: ``PP0000`` is a province and ``PPCC00`` a
  prefecture-level division, never a county; a township or village part of ``000`` would
  be the parent itself.
* Industry code: every value 00-99 falls in one of the standard's ranges (00-39
  government, 40-79 enterprises, 80-89 residents' own systems, 90-99 other), so any two
  digits are accepted.
* Type code: only the types the standard names (GB/T 28181-2016 and the additions of
  GB/T 28181-2022) are accepted; codes in the "extension" ranges have no agreed meaning,
  so the gateway could not say what kind of device it is talking to.
* Serial: any seven digits (the first is the network identifier, all values assigned).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from gateway.errors import InvalidInput

__all__ = [
    "ALARM_INPUT_TYPES",
    "CAMERA_TYPES",
    "DEVICE_TYPES",
    "FRONT_END_TYPES",
    "PROVINCES",
    "DeviceCode",
    "DeviceType",
    "InvalidCode",
    "InvalidDeviceCode",
    "InvalidRegionCode",
    "RegionCode",
    "RegionLevel",
    "is_within",
    "parse_device_code",
    "parse_region_code",
]


class InvalidCode(InvalidInput):
    """A device or region code that is not well formed.

    ``part`` names the segment that is wrong (``"format"``, ``"province"``, ``"type_code"``,
    ...); ``field`` is the input field that carried the code.
    """

    def __init__(self, message: str, *, part: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.part = part


class InvalidDeviceCode(InvalidCode):
    code = "invalid_device_code"


class InvalidRegionCode(InvalidCode):
    code = "invalid_region_code"


def _ranges(*spans: tuple[int, int]) -> frozenset[str]:
    return frozenset(f"{n:02d}" for first, last in spans for n in range(first, last + 1))


PROVINCES: frozenset[str] = _ranges(
    (11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 82)
)


# Hong Kong and Macau have no prefecture level: their districts are numbered directly
# under the province (810001 中西区, 820001 花地玛堂区).
_DISTRICTS_UNDER_PROVINCE = frozenset({"81", "82"})


class DeviceType(NamedTuple):
    kind: str
    kind_zh: str


# GB/T 28181-2016 Table D.1, plus the front-end types GB/T 28181-2022 added (120-125,
# 140-143); 202 was dropped in 2022 but 2016 devices still use it.
DEVICE_TYPES: Mapping[int, DeviceType] = MappingProxyType(
    {
        # 111-130 front-end main devices 前端主设备
        111: DeviceType("DVR", "DVR"),
        112: DeviceType("video server", "视频服务器"),
        113: DeviceType("encoder", "编码器"),
        114: DeviceType("decoder", "解码器"),
        115: DeviceType("video switching matrix", "视频切换矩阵"),
        116: DeviceType("audio switching matrix", "音频切换矩阵"),
        117: DeviceType("alarm controller", "报警控制器"),
        118: DeviceType("NVR", "网络视频录像机(NVR)"),
        120: DeviceType("online video capture system", "在线视频图像信息采集系统"),
        121: DeviceType("video checkpoint", "视频卡口"),
        122: DeviceType("multi-lens device", "多目设备"),
        123: DeviceType("car park entrance control", "停车场出入口控制设备"),
        124: DeviceType("pedestrian entrance control", "人员出入口控制设备"),
        125: DeviceType("security inspection device", "安检设备"),
        130: DeviceType("HVR", "混合硬盘录像机(HVR)"),
        # 131-199 front-end peripherals 前端外围设备
        131: DeviceType("camera", "摄像机"),
        132: DeviceType("IP camera", "网络摄像机(IPC)"),
        133: DeviceType("display", "显示器"),
        134: DeviceType("alarm input", "报警输入设备"),
        135: DeviceType("alarm output", "报警输出设备"),
        136: DeviceType("voice input", "语音输入设备"),
        137: DeviceType("voice output", "语音输出设备"),
        138: DeviceType("mobile transmission device", "移动传输设备"),
        139: DeviceType("other peripheral", "其他外围设备"),
        140: DeviceType("relay alarm output", "报警输出设备(继电器或触发器控制)"),
        141: DeviceType("barrier gate", "道闸"),
        142: DeviceType("smart door", "智能门"),
        143: DeviceType("credential reader", "凭证识别单元"),
        # 200-299 platform devices 平台设备
        200: DeviceType("centre signalling server", "中心信令控制服务器"),
        201: DeviceType("web application server", "Web应用服务器"),
        202: DeviceType("media distribution server", "媒体分发服务器"),
        203: DeviceType("proxy server", "代理服务器"),
        204: DeviceType("security server", "安全服务器"),
        205: DeviceType("alarm server", "报警服务器"),
        206: DeviceType("database server", "数据库服务器"),
        207: DeviceType("GIS server", "GIS服务器"),
        208: DeviceType("management server", "管理服务器"),
        209: DeviceType("access gateway", "接入网关"),
        210: DeviceType("media storage server", "媒体存储服务器"),
        211: DeviceType("signalling security routing gateway", "信令安全路由网关"),
        215: DeviceType("business group", "业务分组"),
        216: DeviceType("virtual organisation", "虚拟组织"),
        # 300-399 centre users, 400-499 terminal users
        300: DeviceType("centre user", "中心用户"),
        400: DeviceType("terminal user", "终端用户"),
        # 500-599 external platform servers 平台外接服务器
        500: DeviceType("video information application platform", "视频图像信息综合应用平台"),
        501: DeviceType("video operations platform", "视频图像信息运维管理平台"),
        502: DeviceType("video analysis system", "视频图像分析系统"),
        503: DeviceType("video information database", "视频图像信息数据库"),
        505: DeviceType("video analysis device", "视频图像分析设备"),
    }
)

# Devices at the edge of the network (111-199): the only kinds the catalog holds; platform
# servers and users have codes in the same scheme but are not sources.
FRONT_END_TYPES: frozenset[int] = frozenset(t for t in DEVICE_TYPES if 111 <= t <= 199)
CAMERA_TYPES: frozenset[int] = frozenset({131, 132})
ALARM_INPUT_TYPES: frozenset[int] = frozenset({134})


@dataclass(frozen=True, slots=True)
class DeviceCode:
    code: str
    centre: str  # 8 digits
    industry: str  # 2 digits
    type_code: int  # 3 digits
    serial: str  # 7 digits

    @property
    def division(self) -> str:
        """The GB/T 2260 division of the centre (province/prefecture levels may be 00)."""
        return self.centre[:6]

    @property
    def kind(self) -> str:
        return DEVICE_TYPES[self.type_code].kind

    @property
    def kind_zh(self) -> str:
        return DEVICE_TYPES[self.type_code].kind_zh

    @property
    def is_camera(self) -> bool:
        return self.type_code in CAMERA_TYPES


class RegionLevel(StrEnum):
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


_LEVEL_BY_LENGTH = {6: RegionLevel.COUNTY, 9: RegionLevel.TOWNSHIP, 12: RegionLevel.VILLAGE}


@dataclass(frozen=True, slots=True)
class RegionCode:
    code: str
    level: RegionLevel
    parent: str | None  # None for a county: the root of the catalog's tree


def _is_digits(text: str) -> bool:
    # str.isdigit() alone also accepts fullwidth and other Unicode digits.
    return text.isascii() and text.isdigit()


def _division_depth(division: str, error: type[InvalidCode], field: str | None) -> int:
    """Check a 6-digit division; return 1 (province), 2 (prefecture) or 3 (county)."""
    province, prefecture, county = division[:2], division[2:4], division[4:]
    if province not in PROVINCES:
        raise error(
            f"province code {province} (digits 1-2) is not a GB/T 2260 province",
            part="province",
            field=field,
        )
    if prefecture == "00" and county != "00" and province not in _DISTRICTS_UNDER_PROVINCE:
        raise error(
            f"division {division} has a county (digits 5-6: {county}) but no prefecture "
            "(digits 3-4: 00); GB/T 2260 has no such division",
            part="prefecture",
            field=field,
        )
    if county != "00":
        return 3
    return 1 if prefecture == "00" else 2


def parse_device_code(code: str, *, field: str | None = "id") -> DeviceCode:
    """Validate a 20-digit GB/T 28181 device code; raise :class:`InvalidDeviceCode`."""
    if len(code) != 20 or not _is_digits(code):
        raise InvalidDeviceCode(
            f"device code must be 20 ASCII digits (GB/T 28181), got {len(code)} characters"
            + ("" if _is_digits(code) else " that are not all digits"),
            part="format",
            field=field,
        )
    centre = code[:8]
    depth = _division_depth(centre[:6], InvalidDeviceCode, field)
    if depth < 3 and centre[6:] != "00":
        raise InvalidDeviceCode(
            f"centre code {centre} has a basic unit (digits 7-8: {centre[6:]}) under a "
            "centre above county level; the unused levels must be 00",
            part="centre",
            field=field,
        )
    type_code = int(code[10:13])
    if type_code not in DEVICE_TYPES:
        raise InvalidDeviceCode(
            f"type code {code[10:13]} (digits 11-13) is not a GB/T 28181 device type",
            part="type_code",
            field=field,
        )
    return DeviceCode(
        code=code, centre=centre, industry=code[8:10], type_code=type_code, serial=code[13:]
    )


def parse_region_code(code: str, *, field: str | None = "region") -> RegionCode:
    """Validate a county (6), township (9) or village (12) code; raise InvalidRegionCode."""
    level = _LEVEL_BY_LENGTH.get(len(code))
    if level is None or not _is_digits(code):
        raise InvalidRegionCode(
            "region code must be 6 (county), 9 (township) or 12 (village) ASCII digits, "
            f"got {len(code)} characters"
            + ("" if _is_digits(code) else " that are not all digits"),
            part="format",
            field=field,
        )
    depth = _division_depth(code[:6], InvalidRegionCode, field)
    if depth < 3:
        above = "a province" if depth == 1 else "a prefecture-level division"
        raise InvalidRegionCode(
            f"{code[:6]} is {above}, not a county: a county's digits 3-4 and 5-6 are not 00",
            part="county",
            field=field,
        )
    if level is not RegionLevel.COUNTY and code[6:9] == "000":
        raise InvalidRegionCode(
            f"township digits 7-9 of {code} are 000, which names no township",
            part="township",
            field=field,
        )
    if level is RegionLevel.VILLAGE and code[9:] == "000":
        raise InvalidRegionCode(
            f"village digits 10-12 of {code} are 000, which names no village",
            part="village",
            field=field,
        )
    parent = None if level is RegionLevel.COUNTY else code[:-3]
    return RegionCode(code=code, level=level, parent=parent)


def is_within(code: str, ancestor: str) -> bool:
    """True if region ``code`` is ``ancestor`` or lies in its subtree (both validated).

    Each level extends its parent's code, so the subtree is exactly the codes that start
    with the ancestor's.
    """
    parse_region_code(code)
    parse_region_code(ancestor)
    return code.startswith(ancestor)
