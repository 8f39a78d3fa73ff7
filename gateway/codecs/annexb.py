"""Annex-B byte streams: splitting into NAL units and converting from length-prefixed form."""

from __future__ import annotations

START_CODE = b"\x00\x00\x00\x01"


def split_nals(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B buffer, without their start codes."""
    nals: list[bytes] = []
    start = _next_start(data, 0)
    while start is not None:
        begin = start[1]
        following = _next_start(data, begin)
        end = following[0] if following is not None else len(data)
        if end > begin:
            nals.append(data[begin:end])
        start = following
    return nals


def _next_start(data: bytes, pos: int) -> tuple[int, int] | None:
    """(offset of the start code, offset of the NAL after it) from ``pos``."""
    i = data.find(b"\x00\x00\x01", pos)
    if i < 0:
        return None
    # A 4-byte start code's leading zero belongs to the start code, not the previous NAL.
    head = i - 1 if i > pos and data[i - 1] == 0 else i
    return head, i + 3


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(START_CODE)


def join_nals(nals: list[bytes]) -> bytes:
    return b"".join(START_CODE + nal for nal in nals)


def length_prefixed_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """AVCC/HVCC sample payload (big-endian NAL sizes) to Annex-B."""
    out = bytearray()
    pos = 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > len(data):
            raise ValueError("length-prefixed NAL size runs past the packet")
        out += START_CODE
        out += data[pos : pos + size]
        pos += size
    return bytes(out)
