"""Decoding as little as possible: from video packets to a few downscaled pictures.

A frame source yields two kinds of samples, in decoding order:

- :class:`Pulse` for every video packet the source delivered, decoded or not, saying
  whether it could be decoded; signal-loss detection needs to see the stream's presence,
  not only the pictures picked for analysis;
- :class:`Picture` for each picture kept by the strategy, scaled to the analysis width.

Strategies (:class:`Strategy`):

``keyframes``
    Only keyframes are handed to the decoder (and the decoder skips anything else,
    ``skip_frame = "NONKEY"``). By far the cheapest; samples are one GOP apart.
``fps:N``
    Every packet is decoded (P- and B-frames need their references) but only N pictures
    per second are scaled and analysed.
``all``
    Every picture is analysed.
``auto`` (default)
    Per GOP: keyframes only where the next keyframe comes within ``max_interval``
    seconds, otherwise ``fps:N`` for that GOP. Most cameras send a keyframe every 1-2 s,
    so recordings are analysed from keyframes alone, while long-GOP footage still gets a
    sample at least every ``max_interval`` seconds. See docs/benchmarks.md (analytics) for
    the measurements behind this choice.

Two sources share one decoding loop: :class:`FileSource` (a recording, timestamps in
seconds from the file's start) and :class:`PacketDecoder` (the hub's
:class:`gateway.hub.packet.Packet` stream of a live camera, timestamps in the gateway's
wall clock).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import av
import av.error
import numpy as np
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from numpy.typing import NDArray

from analytics.errors import CorruptMedia, NoVideoStream, TruncatedMedia

if TYPE_CHECKING:
    from gateway.hub.packet import CodecParams, Packet

StrategyKind = Literal["auto", "keyframes", "fps", "all"]


@dataclass(frozen=True, slots=True)
class Strategy:
    """How much to decode; see the module docstring.

    fps: pictures per second kept by ``fps`` (and by ``auto`` in long GOPs). Two per
        second give frozen and motion detection consecutive pictures half a second
        apart, plenty for a 2 s onset.
    max_interval: ``auto`` decodes keyframes only where they are at most this many
        seconds apart: every detector then still sees a picture at least this often.
    """

    kind: StrategyKind
    fps: float = 2.0
    max_interval: float = 2.0

    @classmethod
    def auto(cls) -> Strategy:
        return cls("auto")

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """``auto``, ``keyframes``, ``all`` or ``fps:N`` (N > 0 pictures per second)."""
        name, _, rate = text.strip().partition(":")
        if name == "fps":
            try:
                fps = float(rate)
            except ValueError:
                fps = math.nan
            if not (fps > 0.0 and math.isfinite(fps)):
                raise ValueError(f"fps strategy needs a positive rate, e.g. fps:2; got {text!r}")
            return cls("fps", fps=fps)
        if name == "auto" and not rate:
            return cls("auto")
        if name == "keyframes" and not rate:
            return cls("keyframes")
        if name == "all" and not rate:
            return cls("all")
        raise ValueError(f"unknown strategy {text!r}: use auto, keyframes, all or fps:N")

    def __str__(self) -> str:
        return f"fps:{self.fps:g}" if self.kind == "fps" else self.kind


@dataclass(frozen=True, slots=True)
class Pulse:
    """A video packet arrived at ``t``; ``decodable`` is False if decoding it failed."""

    t: float
    decodable: bool = True


@dataclass(frozen=True, slots=True)
class Picture:
    """A kept picture shown at ``t``: BGR uint8, scaled to the analysis width."""

    t: float
    image: NDArray[np.uint8]


Sample = Pulse | Picture


class FrameSource(Protocol):
    """Anything that yields samples in decoding order (a file, a live camera)."""

    def __iter__(self) -> Iterator[Sample]: ...


# A GOP planner is told each keyframe's time and answers whether the packets up to the
# next keyframe should be decoded too.
DecodeGop = Callable[[float], bool]


def _scale(frame: VideoFrame, width: int) -> NDArray[np.uint8]:
    # Height rounded to even (chroma subsampling); never upscale.
    width = min(width, frame.width)
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    scaled = frame.reformat(width=width, height=height, format="bgr24", interpolation="AREA")
    image: NDArray[np.uint8] = np.asarray(scaled.to_ndarray(), dtype=np.uint8)
    return image


class _Decoder:
    """The decoding loop both sources share.

    Packets go in with their time in the source's clock; pictures come out with the time
    of the packet that carried them (matched by pts, as decoders reorder B-frames).
    """

    def __init__(
        self,
        ctx: VideoCodecContext,
        strategy: Strategy,
        width: int,
        decode_gop: DecodeGop,
        *,
        drain_keyframes: bool = False,
    ) -> None:
        self.ctx = ctx
        self.strategy = strategy
        self.width = width
        self.decode_gop = decode_gop
        self.drain_keyframes = drain_keyframes  # see PacketDecoder
        self.pictures = 0  # pictures decoded (kept or not)
        self.last_failed = False  # the most recent packet given to the decoder failed
        self._gop_decoded = False
        self._times: dict[int, float] = {}
        self._last_pulse = -math.inf
        self._last_t = -math.inf
        self._next_kept = -math.inf  # when the next picture is due
        self._period = 0.04  # replaced by the observed picture interval

    def feed(self, packet: av.Packet[Any], t: float) -> Iterator[Sample]:
        # Pulses report the stream's presence and must not go back in time, which packet
        # times do in decoding order when there are B-frames.
        pulse = self._last_pulse = max(self._last_pulse, t)
        if packet.is_keyframe:
            self._gop_decoded = self.decode_gop(t)
            if not self._gop_decoded and not self._keep(t):
                yield Pulse(pulse)  # keyframes closer than 1/fps (all-intra streams)
                return
        elif not self._gop_decoded:
            yield Pulse(pulse)
            return
        if packet.pts is not None:
            self._times[packet.pts] = t
            if len(self._times) > 512:  # entries of pictures the decoder dropped
                del self._times[next(iter(self._times))]
        try:
            frames = self.ctx.decode(packet)
            if self.drain_keyframes and packet.is_keyframe and not self._gop_decoded:
                frames += self.ctx.decode(None)
                self.ctx.flush_buffers()  # leaves the drained state: the decoder takes more
        except av.error.FFmpegError:
            self.last_failed = True
            yield Pulse(pulse, decodable=False)
            return
        self.last_failed = False
        yield Pulse(pulse)
        yield from self._pictures(frames)

    def flush(self) -> Iterator[Sample]:
        try:
            frames = self.ctx.decode(None)
        except av.error.FFmpegError:
            self.last_failed = True
            return
        yield from self._pictures(frames)

    def _pictures(self, frames: list[VideoFrame]) -> Iterator[Picture]:
        for frame in frames:
            self.pictures += 1
            t = self._times.pop(frame.pts, math.nan) if frame.pts is not None else math.nan
            # Containers without real presentation times (AVI with B-frames) hand out
            # decode-order stamps; keep time moving forward by one picture interval.
            if not t > self._last_t:
                t = self._last_t + self._period
            elif math.isfinite(self._last_t):
                self._period = min(t - self._last_t, 1.0)
            self._last_t = t
            if self._keep(t):
                step = 1.0 / self.strategy.fps
                # On a grid of 1/fps s, so that 25 fps sampled at 2 fps keeps pictures
                # 12 and 13 apart in turn; restarted after a gap.
                late = t - self._next_kept >= step
                self._next_kept = t + step if late else self._next_kept + step
                yield Picture(t, _scale(frame, self.width))

    def _keep(self, t: float) -> bool:
        # Half a picture interval of slack: timestamps jitter.
        return self.strategy.kind == "all" or t >= self._next_kept - self._period / 2


def _open_codec(ctx: VideoCodecContext, strategy: Strategy, threads: bool) -> None:
    if strategy.kind == "keyframes":
        ctx.skip_frame = "NONKEY"
    if threads:
        ctx.thread_type = "AUTO"


_DURATION_FORMATS = ("mov", "mp4", "matroska", "webm", "avi")  # their headers give a length


class FileSource:
    """Samples from a media file; raises :class:`~analytics.errors.AnalysisError` subclasses.

    Times are seconds from the start of the file. ``duration`` is the length the file's
    headers declare (None if they do not), for progress reports. Use as a context
    manager, or iterate it to the end, so the file is closed.
    """

    def __init__(self, path: Path, strategy: Strategy, width: int) -> None:
        self.path = path
        self.strategy = strategy
        self.width = width
        self._container = self._open()
        container = self._container
        self._stream = container.streams.video[0]
        self._start = container.start_time / av.time_base if container.start_time else 0.0
        self.duration: float | None = (
            container.duration / av.time_base if container.duration else None
        )
        self._keyframes = self._keyframe_times() if strategy.kind == "auto" else []

    def _open(self) -> av.container.InputContainer:
        try:
            container = av.open(str(self.path))
        except av.error.FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: no such file") from None
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"{self.path}: not a readable media file ({exc})") from exc
        if not container.streams.video:
            container.close()
            raise NoVideoStream(f"{self.path}: the file has no video stream")
        return container

    def _keyframe_times(self) -> list[float]:
        """Keyframe times from a demux-only pass (no decoding: a few ms per minute)."""
        times: list[float] = []
        try:
            for packet in self._container.demux(self._stream):
                if packet.is_keyframe and (t := self._time(packet)) is not None:
                    times.append(t)
        except av.error.FFmpegError:
            pass  # the decoding pass meets the same damage and reports it
        self._container.close()
        self._container = self._open()
        self._stream = self._container.streams.video[0]
        return times

    def _time(self, packet: av.Packet[VideoStream]) -> float | None:
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None or packet.time_base is None:
            return None
        return float(stamp * packet.time_base) - self._start

    def _decode_gop(self, t: float) -> bool:
        kind = self.strategy.kind
        if kind != "auto":
            return kind != "keyframes"
        after = bisect.bisect_right(self._keyframes, t + 1e-6)
        end = self._keyframes[after] if after < len(self._keyframes) else self.duration or t
        return end - t > self.strategy.max_interval

    def __enter__(self) -> FileSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[Sample]:
        try:
            yield from self._samples()
        finally:
            self.close()

    def _samples(self) -> Iterator[Sample]:
        ctx = self._stream.codec_context
        _open_codec(ctx, self.strategy, threads=True)
        decoder = _Decoder(ctx, self.strategy, self.width, self._decode_gop)
        reached = -math.inf  # presentation end of the packets read
        cut = False  # the last packet read is incomplete
        try:
            for packet in self._container.demux(self._stream):
                t = self._time(packet)
                if t is None or packet.size == 0:  # demuxer's end-of-stream marker
                    continue
                if packet.duration and packet.time_base is not None:
                    reached = max(reached, t + float(packet.duration * packet.time_base))
                else:
                    reached = max(reached, t)
                cut = packet.is_corrupt  # the demuxer flags a packet cut by end of file
                yield from decoder.feed(packet, t)
        except av.error.FFmpegError as exc:
            raise TruncatedMedia(
                f"{self.path}: unreadable after {max(reached, 0):.1f} s ({exc})"
            ) from exc
        yield from decoder.flush()
        self._check_complete(decoder, reached, cut)

    def _check_complete(self, decoder: _Decoder, reached: float, cut: bool) -> None:
        if decoder.pictures == 0:
            raise CorruptMedia(f"{self.path}: no decodable picture in the video stream")
        if cut or decoder.last_failed:
            raise TruncatedMedia(f"{self.path}: the last picture is cut off at {reached:.1f} s")
        # The video stream's own length; else the file's (Matroska declares only that).
        if self._stream.duration is not None and self._stream.time_base is not None:
            length = float(self._stream.duration * self._stream.time_base)
        elif self.duration is not None:
            length = self.duration
        else:
            return
        known = any(name in self._container.format.name for name in _DURATION_FORMATS)
        # Half a second of slack: containers round their declared length.
        if known and reached < length - 0.5:
            raise TruncatedMedia(
                f"{self.path}: video ends at {reached:.1f} s but the file declares {length:.1f} s"
            )


class PacketDecoder:
    """Samples from a live camera's hub packets, fed one at a time; times are the packets'
    arrival times.

    Audio packets are ignored. A change of codec parameters (``packet.codec`` is a new
    object) starts a fresh decoder at the next keyframe. ``auto`` cannot see the next
    keyframe coming, so it judges each GOP by the length of the previous one. A keyframe
    decoded alone is drained from the decoder at once: a decoder of a stream with B-frames
    otherwise holds each picture back until the next keyframe, a whole GOP late.
    """

    def __init__(self, strategy: Strategy, width: int) -> None:
        self.strategy = strategy
        self.width = width
        self._decoder: _Decoder | None = None
        self._codec: CodecParams | None = None
        self._previous_key = math.nan

    def _decode_gop(self, t: float) -> bool:
        gop, self._previous_key = t - self._previous_key, t
        if self.strategy.kind == "auto":  # unknown (nan) at the first keyframe: decode it all
            return not gop <= self.strategy.max_interval
        return self.strategy.kind != "keyframes"

    def feed(self, packet: Packet) -> Iterator[Sample]:
        if packet.kind != "video":
            return
        if packet.codec is not self._codec:
            if not packet.keyframe:
                return  # a decoder can only start at a keyframe
            self._codec = packet.codec
            # No frame threads: they hold back one picture per thread, i.e. whole GOPs
            # of latency when only keyframes are decoded.
            ctx = av.CodecContext.create(packet.codec.name, "r")
            if not isinstance(ctx, VideoCodecContext):
                raise ValueError(f"{packet.codec.name} is not a video codec")
            _open_codec(ctx, self.strategy, threads=False)
            self._decoder = _Decoder(
                ctx, self.strategy, self.width, self._decode_gop, drain_keyframes=True
            )
        assert self._decoder is not None  # set together with the codec
        av_packet = av.Packet(packet.data)
        av_packet.pts, av_packet.dts = packet.pts, packet.dts
        av_packet.time_base = packet.codec.time_base
        av_packet.is_keyframe = packet.keyframe
        yield from self._decoder.feed(av_packet, packet.arrival)

    def flush(self) -> Iterator[Sample]:
        if self._decoder is not None:
            yield from self._decoder.flush()


def decode_packets(packets: Iterable[Packet], strategy: Strategy, width: int) -> Iterator[Sample]:
    """Samples from a sequence of hub packets (see :class:`PacketDecoder`)."""
    decoder = PacketDecoder(strategy, width)
    for packet in packets:
        yield from decoder.feed(packet)
    yield from decoder.flush()
