"""Stream-copy of hub packets into crash-safe fragmented MP4 segments (blocking: run in a thread).

Each segment starts at a video keyframe and is written by PyAV's mp4 muxer with
``empty_moov`` (the header needs no sample tables, so it is complete before the first
sample) and a fragment about every ``fragment_seconds`` and at every keyframe; with
``flush_packets`` each fragment reaches the kernel as soon as it is cut and ``fdatasync``
follows at ``sync_interval``. A crash or a power cut therefore loses at most the fragment in
progress; :func:`recorder.mp4.repair` cuts a file back to its last complete fragment.

Payloads are the hub's Annex-B access units. movenc turns Annex-B extradata into an avcC/hvcC
record and Annex-B samples into length-prefixed ones itself (ff_isom_write_avcc,
ff_nal_parse_units), keeping every NAL unit, in-band parameter sets included — so the
samples hold exactly the bytes the hub delivered. The output stream needs the parameter
sets as extradata before the header is written; PyAV exposes a stream's extradata only
through a codec context, hence the template stream below.

Timestamps: each segment's video starts at 0 (its first keyframe's dts), so media time plus
the segment's wall-clock start is wall time. Audio is shifted by the same amount: the hub
keeps all tracks of a camera on one timeline, so the camera's lip sync is kept.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import av
import av.error
from av.audio.codeccontext import AudioCodecContext
from av.video.codeccontext import VideoCodecContext

from gateway.hub.packet import CodecParams, Packet
from recorder import layout, mp4
from recorder.errors import DiskFull
from recorder.index import GapReason, Segment

log = logging.getLogger(__name__)

_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_LAYOUTS = {1: "mono", 2: "stereo"}


@dataclass(frozen=True, slots=True)
class WriterConfig:
    segment_seconds: float = 60.0
    fragment_seconds: float = 1.0
    gap_seconds: float = 3.0  # silence longer than this ends the segment: a gap
    sync_interval: float = 1.0  # fdatasync cadence while writing; 0: only on close
    disk_full_retry: float = 5.0  # after ENOSPC, wait this long before the next attempt


@dataclass(frozen=True, slots=True)
class Resumed:
    """Recording (re)started at ``at`` after a break: the open gap ends here."""

    at: float


@dataclass(frozen=True, slots=True)
class Stopped:
    """Recording broke off at ``at``: a gap opens."""

    at: float
    reason: GapReason


Event = Segment | Resumed | Stopped


@dataclass(slots=True)
class WriterStats:
    segments: int = 0
    packets: int = 0  # written
    bytes: int = 0  # payload bytes written
    skipped: int = 0  # not written: before a keyframe, disk full, audio MP4 cannot hold
    errors: int = 0
    last_error: str = ""
    audio_note: str = ""  # why audio is not recorded, if it is not


def _template(codec: CodecParams) -> av.stream.Stream:
    """A stream with a codec context, for ``add_stream_from_template``.

    Streams made that way carry a context PyAV never opens (no encoder runs) but copies into
    the muxer's codec parameters at header time — the one place to give it our extradata.
    The scratch container writes nothing.
    """
    scratch = av.open(io.BytesIO(), "w", format="mp4")
    return scratch.add_stream(codec.name)


class _OpenSegment:
    """One ``.mp4.part`` being written."""

    def __init__(
        self,
        root: Path,
        camera_id: str,
        keyframe: Packet,
        audio: CodecParams | None,
        config: WriterConfig,
    ) -> None:
        self.root = root
        self.camera_id = camera_id
        self.start = keyframe.arrival
        self.video = keyframe.codec
        self.audio = audio
        self.path = layout.partial_path(root, camera_id, self.start)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options = {
            "movflags": "frag_keyframe+empty_moov+default_base_moof",
            "frag_duration": str(int(config.fragment_seconds * 1_000_000)),
            "flush_packets": "1",  # a cut fragment goes to the kernel at once
        }
        self.container = av.open(str(self.path), "w", format="mp4", options=options)
        self.vstream = self.container.add_stream_from_template(_template(self.video), opaque=True)
        vctx = cast(VideoCodecContext, self.vstream.codec_context)
        vctx.extradata = self.video.extradata
        vctx.width, vctx.height = self.video.width, self.video.height
        vctx.time_base = self.vstream.time_base = self.video.time_base
        self.astream: av.stream.Stream | None = None
        if audio is not None:
            self.astream = self.container.add_stream_from_template(_template(audio), opaque=True)
            actx = cast(AudioCodecContext, self.astream.codec_context)
            actx.extradata = audio.extradata or None
            actx.sample_rate = audio.sample_rate
            if audio.channels:
                actx.layout = _LAYOUTS.get(audio.channels, f"{audio.channels}c")
            actx.time_base = self.astream.time_base = audio.time_base
        self.v0 = keyframe.dts
        self.a_offset: int | None = None
        self.keyframes: list[float] = []
        self.packets = 0
        self.last_video = keyframe
        self.video_ticks = 1
        self.audio_ticks = 1
        self.last_audio_dts: int | None = None
        self.last_audio_out = -1  # last audio dts written, in the segment's audio time base
        self.codec_key = mp4.key_of(self.video, audio)
        self.cut_pending = False  # the stream's codecs changed: cut at the next keyframe
        self._sync_fd: int | None = None
        try:
            self.write(keyframe)  # writes the header: the file exists from here
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()
        self._release_fd()
        self.path.unlink(missing_ok=True)

    def media_seconds(self, packet: Packet) -> float:
        """Where ``packet`` (video) falls on this segment's timeline: the camera's clock."""
        return float((packet.dts - self.v0) * packet.codec.time_base)

    def write(self, packet: Packet) -> None:
        out = av.Packet(packet.data)
        out.time_base = packet.codec.time_base
        if packet.codec.kind == "video":
            if packet is not self.last_video and packet.dts > self.last_video.dts:
                self.video_ticks = packet.dts - self.last_video.dts
            out.stream = self.vstream
            out.dts, out.pts = packet.dts - self.v0, packet.pts - self.v0
            out.duration = self.video_ticks
            if packet.keyframe:
                self.keyframes.append(round(float(out.pts * packet.codec.time_base), 3))
            self.last_video = packet
        else:
            assert self.astream is not None
            if self.a_offset is None:
                # The hub keeps a camera's tracks on one timeline: the segment's zero (its
                # first keyframe) in the audio track's time base keeps the camera's A/V sync.
                zero = self.v0 * self.last_video.codec.time_base
                self.a_offset = -round(zero / packet.codec.time_base)
            if self.last_audio_dts is not None:
                self.audio_ticks = packet.dts - self.last_audio_dts
            self.last_audio_dts = packet.dts
            # Sound stamped a moment before the segment's first picture (it arrived after
            # it) is kept at the segment's start: every delivered packet is recorded.
            dts = max(packet.dts + self.a_offset, self.last_audio_out + 1)
            self.last_audio_out = dts
            out.stream = self.astream
            out.dts = out.pts = dts
            out.duration = self.audio_ticks
        out.is_keyframe = packet.keyframe
        self.container.mux_one(out)
        self.packets += 1
        if self._sync_fd is None:  # the muxer creates the file with its header
            self._sync_fd = os.open(self.path, os.O_RDONLY)

    def sync(self) -> None:
        if self._sync_fd is not None:
            os.fdatasync(self._sync_fd)

    def close(self, end: float) -> Segment:
        """Write the last fragment and the index (mfra), rename to the final name."""
        self.container.close()
        self.sync()
        self._release_fd()
        tb = self.video.time_base
        duration = round(float((self.last_video.dts - self.v0 + self.video_ticks) * tb), 3)
        found = mp4.layout(self.path)
        if found is None:  # cannot happen for a file PyAV closed cleanly; never index junk
            raise OSError(errno.EIO, f"{self.path}: no moov after closing")
        final = layout.final_path(self.root, self.camera_id, self.start, end)
        self.path.replace(final)
        _sync_directory(final.parent)
        return Segment(
            camera_id=self.camera_id,
            path=final.relative_to(self.root).as_posix(),
            start=self.start,
            end=end,
            duration=duration,
            bytes=found.file_size,
            keyframes=tuple(self.keyframes),
            packets=self.packets,
            video_codec=self.video.name,
            width=self.video.width,
            height=self.video.height,
            audio_codec=self.audio.name if self.audio else None,
            codec_key=self.codec_key,
            init_size=found.init_size,
            media_end=found.media_end,
        )

    def abandon(self) -> Segment | None:
        """After a write error: keep what reached the disk, as a repaired segment."""
        with contextlib.suppress(Exception):  # the trailer fails too on a full disk
            self.container.close()
        self._release_fd()
        return finish_partial(self.root, self.path)

    def _release_fd(self) -> None:
        if self._sync_fd is not None:
            os.close(self._sync_fd)
            self._sync_fd = None


def finish_partial(root: Path, path: Path) -> Segment | None:
    """Repair a ``.part`` left by a crash or a write error, rename and describe it.

    Returns None (and deletes the file) when not even one fragment is complete.
    """
    parsed = layout.parse_path(root, path)
    if parsed is None or parsed.end is not None:
        raise ValueError(f"{path} is not a partial segment under {root}")
    found = mp4.repair(path)
    facts = mp4.probe(path) if found is not None else None
    if found is None or facts is None:
        path.unlink(missing_ok=True)
        return None
    end = parsed.start + facts.duration
    final = layout.final_path(root, parsed.camera_id, parsed.start, end)
    path.replace(final)
    _sync_directory(final.parent)
    return Segment(
        camera_id=parsed.camera_id,
        path=final.relative_to(root).as_posix(),
        start=parsed.start,
        end=end,
        duration=facts.duration,
        bytes=found.file_size,
        keyframes=facts.keyframes,
        packets=facts.packets,
        video_codec=facts.video_codec,
        width=facts.width,
        height=facts.height,
        audio_codec=facts.audio_codec,
        codec_key=facts.codec_key,
        init_size=found.init_size,
        media_end=found.media_end,
        repaired=True,
    )


def _sync_directory(path: Path) -> None:
    """Make a rename durable: the directory entry is data too."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _AudioSeen:
    codec: CodecParams
    arrival: float


@dataclass(slots=True)
class CameraWriter:
    """One camera's recording state machine. Not thread-safe: one call at a time.

    :meth:`write` takes the packets in the order the hub delivered them and returns what
    happened — closed segments, breaks and resumptions — for the caller to index. Between a
    break and the next keyframe nothing is written: ``current`` is None exactly then.
    """

    root: Path
    camera_id: str
    config: WriterConfig = field(default_factory=WriterConfig)
    stats: WriterStats = field(default_factory=WriterStats)
    current: _OpenSegment | None = None
    _last: Packet | None = None
    _audio: _AudioSeen | None = None
    _paused_until: float = 0.0  # after a full disk
    _last_sync: float = 0.0

    def write(self, packets: Sequence[Packet], now: float) -> list[Event]:
        events: list[Event] = []
        for i, packet in enumerate(packets):
            with self._failures(events, packet.arrival):
                self._one(packets, i, events)
        segment = self.current
        interval = self.config.sync_interval
        if segment is not None and interval and now - self._last_sync >= interval:
            self._last_sync = now
            with self._failures(events, segment.last_video.arrival), _disk_full_as_error():
                segment.sync()
        return events

    def silence(self, now: float) -> list[Event]:
        """No packet for a while: end the segment at its last frame, open a gap."""
        events: list[Event] = []
        last = self._last
        if self.current is not None and last is not None:
            if now - last.arrival > self.config.gap_seconds:
                with self._failures(events, now):
                    self._stop(events, GapReason.CAMERA_OFFLINE)
        return events

    def close(self, reason: GapReason) -> list[Event]:
        """Finish the open segment (shutdown, policy off, camera removed)."""
        events: list[Event] = []
        if self.current is not None:
            with self._failures(events, self.current.last_video.arrival):
                self._stop(events, reason)
        return events

    # --- internals -----------------------------------------------------------------------

    def _one(self, batch: Sequence[Packet], i: int, events: list[Event]) -> None:
        packet = batch[i]
        last, self._last = self._last, packet
        if last is not None and self.current is not None:
            if packet.seq != last.seq + 1:
                self._stop(events, GapReason.PACKETS_LOST)
            elif packet.arrival - last.arrival > self.config.gap_seconds:
                self._stop(events, GapReason.CAMERA_OFFLINE)
        if packet.codec.kind == "audio":
            self._audio = _AudioSeen(packet.codec, packet.arrival)
            self._write_audio(packet)
            return
        segment = self.current
        if packet.keyframe and packet.arrival >= self._paused_until:
            if segment is None:
                self._open(batch, i, events, resumed=True)
                return
            if (
                segment.cut_pending
                or packet.codec is not segment.video
                or segment.media_seconds(packet) >= self.config.segment_seconds - 0.001
            ):
                self.current = None
                self._finish(segment, packet.arrival, events)
                self._open(batch, i, events, resumed=False)
                return
        if segment is None or packet.codec is not segment.video:
            # No keyframe to start from, or new parameter sets on a non-IDR picture: a
            # decoder could not use it. The next keyframe starts a segment.
            self.stats.skipped += 1
            if segment is not None:
                segment.cut_pending = True
            return
        self._mux(segment, packet)

    def _write_audio(self, packet: Packet) -> None:
        segment = self.current
        if segment is not None and packet.codec is segment.audio:
            self._mux(segment, packet)
            return
        self.stats.skipped += 1
        if segment is not None and _audio_recordable(packet.codec, self.stats):
            # Audio appeared or changed: its stream must be declared in a new header.
            segment.cut_pending = True

    def _mux(self, segment: _OpenSegment, packet: Packet) -> None:
        with _disk_full_as_error():
            segment.write(packet)
        self.stats.packets += 1
        self.stats.bytes += len(packet.data)

    def _audio_for(self, batch: Sequence[Packet], i: int) -> CodecParams | None:
        """The audio codec to declare in a segment starting at ``batch[i]``.

        The one heard lately, or — at the very start, before any audio arrived — the first
        in the rest of the batch (the hub hands over its cached GOP, audio included).
        """
        seen = self._audio
        if seen is not None and batch[i].arrival - seen.arrival <= self.config.gap_seconds:
            codec: CodecParams | None = seen.codec
        else:
            codec = next((p.codec for p in batch[i + 1 :] if p.codec.kind == "audio"), None)
        return codec if codec is not None and _audio_recordable(codec, self.stats) else None

    def _open(self, batch: Sequence[Packet], i: int, events: list[Event], *, resumed: bool) -> None:
        keyframe = batch[i]
        with _disk_full_as_error():
            self.current = _OpenSegment(
                self.root, self.camera_id, keyframe, self._audio_for(batch, i), self.config
            )
        self.stats.packets += 1
        self.stats.bytes += len(keyframe.data)
        if resumed:
            events.append(Resumed(keyframe.arrival))

    def _finish(self, segment: _OpenSegment, end: float, events: list[Event]) -> None:
        """Close ``segment``; if even that fails, keep what reached the disk, then fail."""
        try:
            closed = segment.close(end)
        except Exception:
            kept = segment.abandon()
            if kept is not None:
                self.stats.segments += 1
                events.append(kept)
            raise
        self.stats.segments += 1
        events.append(closed)

    def _stop(self, events: list[Event], reason: GapReason) -> None:
        """Close the segment at the end of its last frame; a gap opens there."""
        segment, self.current = self.current, None
        assert segment is not None
        last = segment.last_video
        end = last.arrival + float(segment.video_ticks * last.codec.time_base)
        self._finish(segment, end, events)
        events.append(Stopped(end, reason))

    @contextlib.contextmanager
    def _failures(self, events: list[Event], at: float) -> Iterator[None]:
        """A write failed: keep what reached the disk, record a break, never raise."""
        try:
            yield
        except DiskFull as exc:
            self._fail(events, at, GapReason.DISK_FULL, exc.message)
            self._paused_until = at + self.config.disk_full_retry
        except (OSError, av.error.FFmpegError, ValueError) as exc:
            log.error("camera %s: recording failed: %s", self.camera_id, exc)
            self._fail(events, at, GapReason.WRITE_ERROR, str(exc))

    def _fail(self, events: list[Event], at: float, reason: GapReason, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        segment, self.current = self.current, None
        if segment is not None:
            kept = segment.abandon()
            if kept is not None:
                self.stats.segments += 1
                events.append(kept)
            at = kept.end if kept is not None else segment.start
        elif events and isinstance(events[-1], Segment):  # it closed; what followed failed
            at = events[-1].end
        events.append(Stopped(at, reason))


@contextlib.contextmanager
def _disk_full_as_error() -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # av.error.OSError included
        if exc.errno in _DISK_FULL:
            raise DiskFull(f"recordings disk full: {exc.strerror or exc}") from exc
        raise


_MP4_AUDIO = frozenset({"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"})


def _audio_recordable(codec: CodecParams, stats: WriterStats) -> bool:
    if codec.name in _MP4_AUDIO:
        stats.audio_note = ""
        return True
    # G.711 and G.726, common on cameras, have no MP4 sample entry: video is kept, audio is
    # not. Keeping it would mean transcoding the audio to AAC.
    stats.audio_note = f"audio codec {codec.name} cannot be stored in MP4; video only"
    return False
