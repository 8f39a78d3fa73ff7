"""One camera's single upstream pull, shared by every consumer.

A :class:`CameraStream` owns exactly one connection to its camera. A reader thread of its
own (PyAV is blocking) opens the source, normalises packets and hands them to the event
loop in batches; on the loop they are fanned out to every :class:`Subscriber` and kept in
the GOP cache so a new consumer starts at once. Failures are classified into the status
vocabulary and retried with exponential backoff and jitter — slower after authentication
failures, so that retries do not lock the camera's account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

from adapters.source import Source, Track
from gateway import errors
from gateway.hub.normaliser import Normaliser
from gateway.hub.packet import Packet
from gateway.hub.status import Reason, State, StreamStatus
from gateway.hub.subscriber import Subscriber
from gateway.redact import redact

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Source]
RATE_WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class StreamConfig:
    idle_stop_after: float = 30.0  # on-demand cameras: seconds without consumers
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    auth_backoff_initial: float = 30.0
    auth_backoff_max: float = 600.0
    stable_after: float = 10.0  # online this long resets the backoff
    queue_packets: int = 300
    queue_bytes: int = 32 * 1024 * 1024
    gop_max_packets: int = 1500
    gop_max_bytes: int = 16 * 1024 * 1024


class CameraStream:
    def __init__(
        self,
        camera_id: str,
        source_factory: SourceFactory,
        config: StreamConfig | None = None,
        *,
        always_on: bool = False,
    ) -> None:
        self.camera_id = camera_id
        self.config = config or StreamConfig()
        self.status = StreamStatus(state=State.CONNECTING, since=time.time())
        self.consumer_drops = 0  # packets dropped for slow consumers, all time
        self.sessions_opened = 0  # upstream connections made, all time
        self._source_factory = source_factory
        self._always_on = always_on
        self._subscribers: set[Subscriber] = set()
        self._gop: list[Packet] = []
        self._gop_bytes = 0
        self._rate: deque[tuple[float, int, bool]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"pull-{camera_id}")
        self._pending: list[Packet] = []
        self._pending_lock = threading.Lock()
        self._online_at = 0.0
        self._keyframe_waiters: list[asyncio.Future[Packet]] = []
        # One normaliser for the stream's whole life: timestamps continue across reconnects.
        self._normaliser = Normaliser()
        self._rate_frames = 0
        self._rate_bytes = 0
        self._media_time = Fraction(0)  # dts of the latest video packet, in seconds

    # --- consumers ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, name: str, *, max_packets: int | None = None) -> Subscriber:
        """A new consumer; it first receives the cached GOP, then live packets."""
        subscriber = Subscriber(
            name,
            max_packets=max_packets or self.config.queue_packets,
            max_bytes=self.config.queue_bytes,
            on_close=self._unsubscribed,
        )
        for packet in self._gop:
            subscriber.offer(packet)
        self._subscribers.add(subscriber)
        self._cancel_idle_timer()
        self.start()
        return subscriber

    def _unsubscribed(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self.consumer_drops += subscriber.dropped
        if not self._subscribers and not self._always_on and self._loop is not None:
            self._cancel_idle_timer()
            self._idle_timer = self._loop.call_later(
                self.config.idle_stop_after, lambda: asyncio.ensure_future(self.stop())
            )

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def latest_keyframe(self) -> Packet | None:
        """The keyframe that starts the cached GOP, if the stream is live."""
        return self._gop[0] if self._gop and self.running else None

    async def next_keyframe(self, timeout: float) -> Packet:
        """The cached keyframe, or the next one to arrive (starting the pull if needed)."""
        cached = self.latest_keyframe()
        if cached is not None:
            return cached
        holder = self.subscribe("keyframe-wait")
        waiter: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._keyframe_waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise errors.CameraTimeout(
                f"camera {self.camera_id} sent no keyframe within {timeout:g} s "
                f"(status {self.status.state}: {self.status.reason or 'ok'})"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._keyframe_waiters.remove(waiter)
            holder.close()

    # --- life cycle -----------------------------------------------------------------

    @property
    def always_on(self) -> bool:
        return self._always_on

    @always_on.setter
    def always_on(self, value: bool) -> None:
        self._always_on = value
        if value:
            self._cancel_idle_timer()
            self.start()
        elif not self._subscribers and self.running and self._loop is not None:
            self._cancel_idle_timer()
            self._idle_timer = self._loop.call_later(
                self.config.idle_stop_after, lambda: asyncio.ensure_future(self.stop())
            )

    def start(self) -> None:
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._task = self._loop.create_task(self._run(), name=f"pull {self.camera_id}")

    async def stop(self) -> None:
        """Close the upstream connection; consumers stay subscribed (restart resumes)."""
        self._cancel_idle_timer()
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._gop, self._gop_bytes = [], 0
        self._reset_rates()  # the state stays: it is the camera's last known health

    async def restart(self, source_factory: SourceFactory) -> None:
        """New source (the camera's URL or credentials changed): reconnect if running."""
        self._source_factory = source_factory
        was_running = self.running
        await self.stop()
        if was_running or self._subscribers or self._always_on:
            self.start()

    async def close(self) -> None:
        """Remove the stream for good: consumers see the end of the stream."""
        self._always_on = False
        for subscriber in list(self._subscribers):
            subscriber.close("camera removed")
        await self.stop()
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        auth_failures = 0
        while True:
            if self.status.state != State.ONLINE:
                self._set_state(State.CONNECTING, self.status.reason, self.status.message)
            stop = self._stop
            try:
                await loop.run_in_executor(self._thread, self._pull, loop, stop)
                raise errors.StreamEnded("the source stopped")
            except errors.SourceError as exc:
                reason = Reason(exc.reason)
                message = redact(exc.message)
            except Exception as exc:  # a bug or an unexpected library error: keep pulling
                log.exception("camera %s: unexpected error in the pull", self.camera_id)
                reason, message = Reason.PROTOCOL_ERROR, redact(f"internal error: {exc!r}")
            if stop.is_set():
                return
            was_stable = (
                self._online_at and time.time() - self._online_at >= self.config.stable_after
            )
            if was_stable:
                failures = auth_failures = 0
            self._online_at = 0.0
            self._gop, self._gop_bytes = [], 0
            self._set_state(State.OFFLINE, reason, message)
            if reason is Reason.AUTH_FAILED:
                delay = min(
                    self.config.auth_backoff_max,
                    self.config.auth_backoff_initial * 2**auth_failures,
                )
                auth_failures += 1
            else:
                delay = min(self.config.backoff_max, self.config.backoff_initial * 2**failures)
                failures += 1
            delay *= random.uniform(0.8, 1.2)  # jitter: cameras on one NVR do not retry in step
            log.warning(
                "camera %s offline (%s): %s; retry in %.1f s",
                self.camera_id,
                reason.value,
                message,
                delay,
            )
            self.status.reconnects += 1
            await asyncio.sleep(delay)

    def _pull(self, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        """Reader thread: one upstream session, until it fails or ``stop`` is set."""
        source = self._source_factory()
        try:
            tracks = source.open()
            if stop.is_set():
                return
            normaliser = self._normaliser
            normaliser.start(tracks)
            self.sessions_opened += 1
            loop.call_soon_threadsafe(self._opened, tracks)
            while not stop.is_set():
                raw = source.read()
                packet = normaliser.push(raw, time.time())
                if packet is None:
                    continue
                with self._pending_lock:
                    self._pending.append(packet)
                    wake = len(self._pending) == 1
                if wake:  # one wake-up per batch, not per packet
                    loop.call_soon_threadsafe(self._drain)
        finally:
            source.close()

    # --- on the event loop ----------------------------------------------------------

    def _opened(self, tracks: list[Track]) -> None:
        video = next(t for t in tracks if t.kind == "video")
        audio = next((t for t in tracks if t.kind == "audio"), None)
        s = self.status
        s.codec, s.profile, s.width, s.height = (
            video.codec,
            video.profile,
            video.width,
            video.height,
        )
        s.audio_codec = audio.codec if audio else None
        self._online_at = time.time()
        self._set_state(State.ONLINE, Reason.NONE, "")
        log.info(
            "camera %s online: %s %dx%d", self.camera_id, video.codec, video.width, video.height
        )

    def _drain(self) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, []
        for packet in batch:
            self._publish(packet)

    def _publish(self, packet: Packet) -> None:
        if self._task is None:  # stopped while the batch was in flight
            return
        s = self.status
        s.packets += 1
        s.bytes += len(packet.data)
        s.last_packet = packet.arrival
        is_video = packet.kind == "video"
        if is_video:
            codec = packet.codec
            s.width, s.height, s.profile = codec.width, codec.height, codec.profile
            if packet.pts != packet.dts:
                s.has_b_frames = True
        if is_video:
            self._media_time = packet.dts * packet.codec.time_base
        self._measure(float(self._media_time), len(packet.data), is_video)
        if packet.is_video_keyframe:
            self._gop, self._gop_bytes = [packet], len(packet.data)
            for waiter in self._keyframe_waiters:
                if not waiter.done():
                    waiter.set_result(packet)
        elif self._gop:
            self._gop.append(packet)
            self._gop_bytes += len(packet.data)
            if (
                len(self._gop) > self.config.gop_max_packets
                or self._gop_bytes > self.config.gop_max_bytes
            ):
                self._gop, self._gop_bytes = [], 0  # GOP too long to cache: viewers wait
        for subscriber in self._subscribers:
            subscriber.offer(packet)

    def _measure(self, media_time: float, size: int, is_video: bool) -> None:
        # Over the camera's own timeline, not arrival times: packets arrive in bursts (at
        # connect, over TCP), frames are stamped at the camera's rate. Running sums: O(1).
        rate = self._rate
        rate.append((media_time, size, is_video))
        self._rate_bytes += size
        self._rate_frames += is_video
        while media_time - rate[0][0] > RATE_WINDOW_S:
            _, old_size, old_video = rate.popleft()
            self._rate_bytes -= old_size
            self._rate_frames -= old_video
        first_time, first_size, first_video = rate[0]
        span = media_time - first_time
        if span > 0.5:  # intervals after the first packet: count it out of both sums
            self.status.fps = round((self._rate_frames - first_video) / span, 2)
            self.status.bitrate = round(8 * (self._rate_bytes - first_size) / span)

    def _set_state(self, state: State, reason: Reason, message: str) -> None:
        s = self.status
        if s.state != state or s.reason != reason:
            s.since = time.time()
        s.state, s.reason, s.message = state, reason, message
        if state != State.ONLINE:
            self._reset_rates()
        if state == State.OFFLINE:
            # Whoever waits for a picture learns why there is none now, not at its timeout.
            for waiter in self._keyframe_waiters:
                if not waiter.done():
                    waiter.set_exception(errors.source_error(reason.value, message))

    def _reset_rates(self) -> None:
        self.status.fps = self.status.bitrate = 0.0
        self._rate.clear()
        self._rate_bytes = self._rate_frames = 0

    def dropped_total(self) -> int:
        return self.consumer_drops + sum(sub.dropped for sub in self._subscribers)
