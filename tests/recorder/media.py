"""Footage and checks for the recorder tests.

Packets come from real encoders and real footage through the hub's own normaliser, so a
test sees exactly what the recorder sees in production; files are checked with tools the
project did not write (ffprobe, and PyAV decoding every frame).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from adapters.source import RawPacket, Track
from gateway.codecs import annexb
from gateway.hub.normaliser import Normaliser
from gateway.hub.packet import Packet

CAMERA = "34010200001320000001"


def _track(stream: av.stream.Stream, fps: float) -> Track:
    ctx = stream.codec_context
    kind = "video" if stream.type == "video" else "audio"
    return Track(
        index=stream.index,
        kind=kind,
        codec=ctx.name,
        time_base=Fraction(stream.time_base),  # type: ignore[arg-type]
        extradata=bytes(ctx.extradata or b""),
        width=getattr(ctx, "width", 0) or 0,
        height=getattr(ctx, "height", 0) or 0,
        fps=fps if kind == "video" else 0.0,
        sample_rate=getattr(ctx, "sample_rate", 0) or 0,
        channels=getattr(ctx, "channels", 0) or 0,
    )


def file_packets(path: Path, t0: float) -> list[Packet]:
    """Every packet of a media file through the hub's normaliser, arriving in real time
    from ``t0`` (wall time follows the file's decode timestamps)."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        fps = float(container.streams.video[0].average_rate or 25)
        normaliser = Normaliser()
        normaliser.start([_track(s, fps) for s in streams])
        out = []
        for packet in container.demux(*streams):
            if packet.size == 0 or packet.dts is None:
                continue
            arrival = t0 + float(packet.dts * packet.time_base) + 0.005
            raw = RawPacket(
                packet.stream.index, bytes(packet), packet.pts, packet.dts, packet.is_keyframe
            )
            normalised = normaliser.push(raw, arrival)
            if normalised is not None:
                out.append(normalised)
    return out


def synthetic_packets(
    seconds: float,
    t0: float,
    *,
    fps: int = 15,
    gop: int = 15,
    size: tuple[int, int] = (320, 240),
    normaliser: Normaliser | None = None,
) -> list[Packet]:
    """Baseline H.264 of a moving bar (like the demo camera), unpaced, through a normaliser
    (pass the previous call's to continue the same stream, as after a reconnect)."""
    width, height = size
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = width, height  # type: ignore[attr-defined]
    encoder.pix_fmt = "yuv420p"  # type: ignore[attr-defined]
    encoder.time_base = Fraction(1, fps)
    encoder.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
    }
    normaliser = normaliser or Normaliser()
    normaliser.start(
        [Track(0, "video", "h264", Fraction(1, fps), width=width, height=height, fps=float(fps))]
    )
    out: list[Packet] = []

    def push(packets: Iterable[av.Packet]) -> None:
        for p in packets:
            arrival = t0 + float(p.dts) / fps + 0.005
            raw = RawPacket(0, bytes(p), p.pts, p.dts, p.is_keyframe)
            normalised = normaliser.push(raw, arrival)
            if normalised is not None:
                out.append(normalised)

    for i in range(round(seconds * fps)):
        image = np.full((height, width, 3), 40, np.uint8)
        x = (i * 7) % width
        image[:, x : x + 12] = (40, 200, 240)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        push(encoder.encode(frame))  # type: ignore[attr-defined]
    push(encoder.encode(None))  # type: ignore[attr-defined]
    return out


def nal_digest(nals: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for nal in nals:
        digest.update(len(nal).to_bytes(4, "big") + nal)
    return digest.hexdigest()


def packet_digest(packet: Packet) -> str:
    """What a sample must contain: the NAL units for video, the bytes for audio."""
    if packet.kind == "video":
        return nal_digest(annexb.split_nals(packet.data))
    return hashlib.sha256(packet.data).hexdigest()


def file_digests(path: Path) -> dict[str, list[str]]:
    """kind → the digest of every sample of ``path``, in decode order."""
    out: dict[str, list[str]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            data = bytes(packet)
            if packet.stream.type == "video":
                nals, pos = [], 0
                while pos + 4 <= len(data):
                    size = int.from_bytes(data[pos : pos + 4], "big")
                    nals.append(data[pos + 4 : pos + 4 + size])
                    pos += 4 + size
                out["video"].append(nal_digest(nals))
            else:
                out["audio"].append(hashlib.sha256(data).hexdigest())
    return out


def ffprobe_frames(path: Path) -> dict[str, int]:
    """Decode every frame with ffprobe; fails on any decoder or demuxer complaint."""
    run = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and not run.stderr.strip(), f"{path}: {run.stderr}"
    streams = json.loads(run.stdout)["streams"]
    return {s["codec_type"]: int(s["nb_read_frames"]) for s in streams}


def decoded_frames(path: Path) -> int:
    """Decode every video frame with PyAV; raises on a broken stream."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
