"""A synthetic camera generated inside the gateway: no files, no network, no outside tools.

It lets a newcomer see a camera online the moment the gateway starts, and gives tests a
source with known content. Frames (a moving bar, a clock and a frame counter) are encoded
with PyAV's libx264 as a surveillance camera would: baseline profile, no B-frames, a
keyframe every ``gop`` frames, paced in real time.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import cv2
import numpy as np

from adapters.source import RawPacket, Track
from gateway import errors

SCHEME = "demo"


class DemoSource:
    """``demo://NAME?width=640&height=360&fps=15&gop=30``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != SCHEME:
            raise errors.InvalidInput(f"not a demo URL: {url}", field="url")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            self.width = int(query.get("width", 640))
            self.height = int(query.get("height", 360))
            self.fps = int(query.get("fps", 15))
            self.gop = int(query.get("gop", self.fps * 2))
        except ValueError:
            raise errors.InvalidInput(f"demo URL parameters must be integers: {url}") from None
        if not (16 <= self.width <= 3840 and 16 <= self.height <= 2160 and 1 <= self.fps <= 60):
            raise errors.InvalidInput(f"demo URL parameters out of range: {url}", field="url")
        self.display_url = url
        self._label = parts.netloc or "demo"
        self._encoder: av.video.codeccontext.VideoCodecContext | None = None
        self._pending: list[av.Packet[Any]] = []
        self._frame_index = 0
        self._started = 0.0

    def open(self) -> list[Track]:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = self.width, self.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = Fraction(1, self.fps)
        encoder.framerate = Fraction(self.fps)
        encoder.gop_size = self.gop
        encoder.max_b_frames = 0
        encoder.bit_rate = 600_000
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "x264-params": f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0",
        }
        encoder.open()
        self._encoder = encoder
        self._started = time.monotonic()
        return [
            Track(
                index=0,
                kind="video",
                codec="h264",
                time_base=Fraction(1, self.fps),
                width=self.width,
                height=self.height,
                fps=float(self.fps),
                profile="Constrained Baseline",
            )
        ]

    def read(self) -> RawPacket:
        if self._encoder is None:
            raise errors.StreamEnded("demo source is not open")
        while not self._pending:
            # Pace like a live camera: frame n is due n/fps seconds after opening.
            due = self._started + self._frame_index / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            frame = av.VideoFrame.from_ndarray(self._picture(), format="bgr24")
            frame.pts = self._frame_index
            self._frame_index += 1
            self._pending = list(self._encoder.encode(frame.reformat(format="yuv420p")))
        packet = self._pending.pop(0)
        return RawPacket(
            track=0, data=bytes(packet), pts=packet.pts, dts=packet.dts, keyframe=packet.is_keyframe
        )

    def close(self) -> None:
        self._encoder = None
        self._pending = []

    def _picture(self) -> np.ndarray:
        w, h, n = self.width, self.height, self._frame_index
        image = np.zeros((h, w, 3), np.uint8)
        image[:, :] = (60, 40, 20)
        bar = (n * 4) % w
        image[:, bar : bar + max(4, w // 40)] = (40, 200, 240)
        scale = h / 360
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        cv2.putText(
            image,
            self._label,
            (int(20 * scale), int(50 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            2,
        )
        cv2.putText(
            image,
            f"{stamp}  #{n}",
            (int(20 * scale), h - int(30 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8 * scale,
            (255, 255, 255),
            2,
        )
        return image
