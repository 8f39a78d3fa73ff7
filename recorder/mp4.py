"""Reading recorded fragmented MP4 files: their box layout, repair and the facts the index keeps.

A segment is ``ftyp`` ``moov`` (no samples: ``empty_moov``), then one ``moof``+``mdat`` pair
per fragment, then ``mfra`` once the writer closed it. After a crash or a full disk the file
ends somewhere inside a fragment; everything up to the last complete ``mdat`` is a valid
file that players read, so repair is a truncation — no re-muxing, no guessing.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from gateway.codecs import annexb, h264, hevc
from gateway.hub.packet import CodecParams

_HEADER = struct.Struct(">I4s")


@dataclass(frozen=True, slots=True)
class Layout:
    init_size: int  # bytes of ftyp+moov: the HLS initialisation section
    media_end: int  # end of the last complete fragment
    fragments: int
    file_size: int
    closed: bool  # the writer finished it (mfra present, nothing after it)


def layout(path: Path) -> Layout | None:
    """The box layout of ``path``, or None when it has no complete ``moov`` (unplayable)."""
    init_size = media_end = fragments = 0
    closed = False
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        pos = 0
        in_fragment = False
        while pos + 8 <= size:
            fh.seek(pos)
            length, kind = _HEADER.unpack(fh.read(8))
            if length == 1:  # 64-bit size follows the type
                if pos + 16 > size:
                    break
                length = struct.unpack(">Q", fh.read(8))[0]
            if length < 8 or pos + length > size:
                break  # size 0 ("to the end") or a box cut short: the end of the good part
            end = pos + length
            if kind == b"moov":
                init_size = media_end = end
            elif kind == b"moof":
                in_fragment = init_size > 0
            elif kind == b"mdat" and in_fragment:
                media_end, in_fragment = end, False
                fragments += 1
            elif kind == b"mfra":
                closed = end == size
            pos = end
    if not init_size:
        return None
    return Layout(init_size, media_end, fragments, size, closed)


def repair(path: Path) -> Layout | None:
    """Cut ``path`` after its last complete fragment; None if nothing playable is left."""
    found = layout(path)
    if found is None or found.fragments == 0:
        return None
    if found.closed or found.file_size == found.media_end:
        return found
    with path.open("r+b") as fh:
        fh.truncate(found.media_end)
        os.fsync(fh.fileno())
    return Layout(found.init_size, found.media_end, found.fragments, found.media_end, False)


def parameter_sets(codec_name: str, extradata: bytes) -> list[bytes]:
    """The parameter-set NAL units of video ``extradata``, whether Annex-B or avcC/hvcC.

    Live segments know their parameter sets in Annex-B (from the hub), files read back carry
    avcC/hvcC: both reduce to the same list, so codec keys agree however they were computed.
    """
    if not extradata:
        return []
    if not annexb.is_annexb(extradata):
        convert = h264.avcc_to_annexb if codec_name == "h264" else hevc.hvcc_to_annexb
        extradata = convert(extradata)[0]
    nal_type = h264.nal_type if codec_name == "h264" else hevc.nal_type
    wanted = h264.PARAMETER_SETS if codec_name == "h264" else hevc.PARAMETER_SETS
    return [nal for nal in annexb.split_nals(extradata) if nal_type(nal) in wanted]


def codec_key(video: tuple[str, bytes], audio: tuple[str, bytes] | None) -> str:
    """A short digest of what a decoder needs: segments with equal keys can be joined."""
    digest = hashlib.sha256(video[0].encode())
    for nal in parameter_sets(*video):
        digest.update(len(nal).to_bytes(4, "big") + nal)
    if audio is not None:
        digest.update(b"|" + audio[0].encode() + b"|" + audio[1])
    return digest.hexdigest()[:16]


def key_of(video: CodecParams, audio: CodecParams | None) -> str:
    return codec_key(
        (video.name, video.extradata), (audio.name, audio.extradata) if audio else None
    )


@dataclass(frozen=True, slots=True)
class Facts:
    """What the index records about a segment's content (media time, from its start)."""

    duration: float
    keyframes: tuple[float, ...]
    packets: int
    video_codec: str
    width: int
    height: int
    audio_codec: str | None
    codec_key: str


def probe(path: Path) -> Facts | None:
    """Read every packet header of ``path`` (no decoding); None without a video track."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        vctx = video.codec_context
        keyframes: list[float] = []
        packets = 0
        first: int | None = None
        last_end = 0
        tb = video.time_base or Fraction(1, 90000)
        streams = [video] if audio is None else [video, audio]
        for packet in container.demux(*streams):
            if packet.size == 0:
                continue
            packets += 1
            if packet.stream is not video or packet.dts is None:
                continue
            if first is None:
                first = packet.dts
            pts = packet.pts if packet.pts is not None else packet.dts
            if packet.is_keyframe:
                keyframes.append(round(float((pts - first) * tb), 3))
            last_end = max(last_end, packet.dts + (packet.duration or 0))
        if first is None:
            return None
        key = codec_key(
            (vctx.name, bytes(vctx.extradata or b"")),
            (audio.codec_context.name, bytes(audio.codec_context.extradata or b""))
            if audio is not None
            else None,
        )
        return Facts(
            duration=round(float((last_end - first) * tb), 3),
            keyframes=tuple(keyframes),
            packets=packets,
            video_codec=vctx.name,
            width=vctx.width,
            height=vctx.height,
            audio_codec=audio.codec_context.name if audio is not None else None,
            codec_key=key,
        )
