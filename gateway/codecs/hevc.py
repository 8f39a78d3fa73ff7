"""H.265 facts the hub needs: NAL types and hvcC."""

from __future__ import annotations

from gateway.codecs.annexb import join_nals

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
PARAMETER_SETS = frozenset({NAL_VPS, NAL_SPS, NAL_PPS})
IRAP = range(16, 24)  # BLA, IDR and CRA pictures: where a decoder may start


def nal_type(nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F


def hvcc_to_annexb(extradata: bytes) -> tuple[bytes, int]:
    """hvcC record → (Annex-B parameter sets, NAL length size of the samples)."""
    if len(extradata) < 23 or extradata[0] != 1:
        raise ValueError("not an hvcC record")
    length_size = (extradata[21] & 0x03) + 1
    nals: list[bytes] = []
    pos = 23
    for _ in range(extradata[22]):
        count = int.from_bytes(extradata[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            size = int.from_bytes(extradata[pos : pos + 2], "big")
            nals.append(extradata[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return join_nals(nals), length_size
