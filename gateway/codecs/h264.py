"""H.264 facts the hub needs: NAL types, avcC, and the resolution and profile in an SPS."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.codecs.annexb import join_nals

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
PARAMETER_SETS = frozenset({NAL_SPS, NAL_PPS})

PROFILES = {
    66: "Baseline",
    77: "Main",
    88: "Extended",
    100: "High",
    110: "High 10",
    122: "High 4:2:2",
    244: "High 4:4:4 Predictive",
}


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


@dataclass(frozen=True, slots=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    width: int
    height: int

    @property
    def profile(self) -> str:
        if self.profile_idc == 66 and self.constraint_flags & 0x40:
            return "Constrained Baseline"
        return PROFILES.get(self.profile_idc, f"profile {self.profile_idc}")

    @property
    def profile_level_id(self) -> str:
        """The SDP ``profile-level-id`` (RFC 6184) for this SPS."""
        return f"{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


def avcc_to_annexb(extradata: bytes) -> tuple[bytes, int]:
    """avcC record → (Annex-B parameter sets, NAL length size of the samples)."""
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (extradata[4] & 0x03) + 1
    nals: list[bytes] = []
    pos = 5
    count = extradata[pos] & 0x1F
    pos += 1
    for table in range(2):
        if table == 1:
            count = extradata[pos]
            pos += 1
        for _ in range(count):
            size = int.from_bytes(extradata[pos : pos + 2], "big")
            nals.append(extradata[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return join_nals(nals), length_size


class _Bits:
    """Exp-Golomb reader over an RBSP (emulation prevention bytes removed)."""

    def __init__(self, data: bytes) -> None:
        self._data = data.replace(b"\x00\x00\x03", b"\x00\x00")
        self._pos = 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3]  # IndexError on a truncated SPS: caller handles
        value = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def parse_sps(nal: bytes) -> SpsInfo:
    """Resolution and profile from an SPS NAL unit (with its one-byte header)."""
    try:
        return _parse_sps(nal)
    except IndexError:
        raise ValueError("truncated SPS") from None


def _parse_sps(nal: bytes) -> SpsInfo:
    r = _Bits(nal[1:])
    profile_idc, constraints, level_idc = r.bits(8), r.bits(8), r.bits(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            r.bit()  # separate_colour_plane_flag
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.bit():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = height_map_units * 16 * (2 - frame_mbs_only)
    if r.bit():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        crop_x = 2 if chroma_format_idc in (1, 2) else 1
        crop_y = (2 if chroma_format_idc == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * crop_x
        height -= (top + bottom) * crop_y
    return SpsInfo(profile_idc, constraints, level_idc, width, height)


def _skip_scaling_list(r: _Bits, size: int) -> None:
    last, nxt = 8, 8
    for _ in range(size):
        if nxt:
            nxt = (last + r.se() + 256) % 256
        last = nxt or last
