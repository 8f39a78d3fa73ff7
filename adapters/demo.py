"""A synthetic camera generated inside the gateway: no files, no network, no outside tools.

It lets a newcomer see a camera online the moment the gateway starts, and gives tests a
source with known content. Frames (a textured scene that the analytics judge healthy, a
moving bar, a clock and a frame counter) are encoded with PyAV's libx264 as a surveillance
camera would: baseline profile, no B-frames, a keyframe every ``gop`` frames, paced in real
time.

A fault can be induced, for the analytics and their tests: ``fault=black`` (a black
picture), ``fault=frozen`` (the picture stops changing) or ``fault=silent`` (no packets at
all, like a stalled network), from ``fault_after`` seconds after the stream is opened
(default 0) for ``fault_for`` seconds (default: for good; ``silent`` needs it, at most 60,
as a silent source holds the reading thread).
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
FAULTS = ("black", "frozen", "silent")


class DemoSource:
    """``demo://NAME?width=640&height=360&fps=15&gop=30[&fault=black&fault_after=5&fault_for=10]``."""

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
            self.fault_after = float(query.get("fault_after", 0))
            self.fault_for = float(query.get("fault_for", "inf"))
        except ValueError:
            raise errors.InvalidInput(f"demo URL parameters must be numbers: {url}") from None
        if not (16 <= self.width <= 3840 and 16 <= self.height <= 2160 and 1 <= self.fps <= 60):
            raise errors.InvalidInput(f"demo URL parameters out of range: {url}", field="url")
        self.fault = query.get("fault")
        if self.fault not in (None, *FAULTS):
            raise errors.InvalidInput(f"demo fault must be one of {', '.join(FAULTS)}", field="url")
        if self.fault == "silent" and not self.fault_for <= 60:
            raise errors.InvalidInput(
                "demo fault=silent needs fault_for (at most 60 s)", field="url"
            )
        self.display_url = url
        self._label = parts.netloc or "demo"
        self._encoder: av.video.codeccontext.VideoCodecContext | None = None
        self._pending: list[av.Packet[Any]] = []
        self._frame_index = 0
        self._started = 0.0
        self._scene = _scene(self.width, self.height, self._label)
        self._frozen: np.ndarray | None = None

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
            if self._faulty("silent"):
                resume = self.fault_after + self.fault_for
                time.sleep(max(0.0, self._started + resume - time.monotonic()))
                self._frame_index = int(resume * self.fps)  # the frames of the silence never were
                continue
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

    def _faulty(self, fault: str) -> bool:
        """``fault`` is induced at the current frame's time."""
        t = self._frame_index / self.fps
        return self.fault == fault and self.fault_after <= t < self.fault_after + self.fault_for

    def _picture(self) -> np.ndarray:
        if self._faulty("black"):
            return np.zeros((self.height, self.width, 3), np.uint8)
        if self._faulty("frozen"):
            if self._frozen is None:
                self._frozen = self._live_picture()
            return self._frozen
        self._frozen = None
        return self._live_picture()

    def _live_picture(self) -> np.ndarray:
        w, h, n = self.width, self.height, self._frame_index
        image = self._scene.copy()
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


def _scene(width: int, height: int, label: str) -> np.ndarray:
    """A still scene the analytics take for a healthy camera: mid-grey blocks of varied
    shade and tint (texture everywhere, no cast, no large blank area), softened like
    optics; the same for the same camera name."""
    rng = np.random.default_rng(sum(label.encode()))
    blocks = rng.integers(70, 190, (18, 32, 1)) + rng.integers(-20, 21, (18, 32, 3))
    picture = cv2.resize(
        np.clip(blocks, 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
    )
    softened: np.ndarray = cv2.GaussianBlur(picture, (3, 3), 0)
    return softened
