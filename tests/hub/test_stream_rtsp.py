"""The hub against a real RTSP camera (GStreamer's RTSP server): one pull, health, recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from adapters import open_source
from gateway import errors
from gateway.hub.hub import Hub
from gateway.hub.status import Reason, State
from gateway.hub.stream import CameraStream, StreamConfig
from tests.peers.rtsp import RtspServer

FAST = StreamConfig(
    idle_stop_after=0.5,
    backoff_initial=0.3,
    backoff_max=1.0,
    auth_backoff_initial=5.0,
    auth_backoff_max=5.0,
    stable_after=1.0,
)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    h = Hub(FAST, probe_timeout=8)
    yield h
    await h.close()


def rtsp(
    url: str, user: str | None = None, password: str | None = None, timeout: float = 4.0
) -> Callable[[], object]:
    return lambda: open_source(url, user, password, open_timeout=timeout, read_timeout=timeout)


async def wait_state(stream: CameraStream, state: State, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while stream.status.state != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {stream.status} after {timeout} s")
        await asyncio.sleep(0.05)


async def test_camera_online_with_codec_size_fps(hub: Hub, rtsp_server: RtspServer) -> None:
    stream = await hub.put("c1", "main", rtsp(rtsp_server.url("/cam")), always_on=True)
    sub = stream.subscribe("t")
    first = await asyncio.wait_for(sub.get(), 10)
    assert first.is_video_keyframe  # consumers start at a keyframe
    for _ in range(60):
        await asyncio.wait_for(sub.get(), 5)
    s = stream.status
    assert (s.state, s.reason, s.codec, s.width, s.height) == (
        State.ONLINE,
        Reason.NONE,
        "h264",
        640,
        360,
    )
    assert s.profile == "Constrained Baseline" and not s.has_b_frames
    assert 20 <= s.fps <= 30 and s.bitrate > 0


async def test_wrong_password_is_auth_failed(hub: Hub, rtsp_server: RtspServer) -> None:
    stream = await hub.put(
        "c2", "main", rtsp(rtsp_server.url("/auth"), "admin", "wrong-pass"), always_on=True
    )
    await wait_state(stream, State.OFFLINE, 10)
    assert stream.status.reason == Reason.AUTH_FAILED
    assert "wrong-pass" not in stream.status.message


async def test_right_password_goes_online(hub: Hub, rtsp_server: RtspServer) -> None:
    assert rtsp_server.password is not None
    stream = await hub.put(
        "c3", "main", rtsp(rtsp_server.url("/auth"), "admin", rtsp_server.password), always_on=True
    )
    await wait_state(stream, State.ONLINE, 10)


async def test_wrong_path_is_not_found(hub: Hub, rtsp_server: RtspServer) -> None:
    stream = await hub.put("c4", "main", rtsp(rtsp_server.url("/nope")), always_on=True)
    await wait_state(stream, State.OFFLINE, 10)
    assert stream.status.reason == Reason.NOT_FOUND


async def test_frozen_server_is_timeout(
    hub: Hub, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    server = make_rtsp_server({"/cam": "test"})
    server.freeze()  # accepts TCP (kernel backlog) but never answers
    try:
        stream = await hub.put("c5", "main", rtsp(server.url("/cam"), timeout=1.5), always_on=True)
        await wait_state(stream, State.OFFLINE, 10)
        assert stream.status.reason == Reason.TIMEOUT, stream.status
    finally:
        server.thaw()


async def test_server_killed_then_restarted(
    hub: Hub, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    server = make_rtsp_server({"/cam": "test"})
    stream = await hub.put("c6", "main", rtsp(server.url("/cam"), timeout=2), always_on=True)
    sub = stream.subscribe("t")
    await wait_state(stream, State.ONLINE, 10)
    last = await asyncio.wait_for(sub.get(), 5)
    server.stop()
    await wait_state(stream, State.OFFLINE, 10)
    assert stream.status.reason in (Reason.STREAM_ENDED, Reason.REFUSED, Reason.TIMEOUT)
    await asyncio.sleep(2)  # several failed reconnects against a closed port
    assert stream.status.reason == Reason.REFUSED
    server.restart()
    restarted = time.monotonic()
    await wait_state(stream, State.ONLINE, 10)
    assert time.monotonic() - restarted < 5
    # Timestamps keep increasing across the reconnect, and the gap is the real one.
    while True:
        packet = await asyncio.wait_for(sub.get(), 5)
        if packet.arrival > last.arrival + 1:
            break
        last = packet
    assert packet.dts > last.dts and packet.is_video_keyframe
    assert stream.status.reconnects >= 1


async def test_ten_consumers_one_rtsp_session(
    hub: Hub, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    server = make_rtsp_server({"/cam": "test"})
    stream = await hub.put("c7", "main", rtsp(server.url("/cam")), always_on=False)
    subs = [stream.subscribe(f"consumer-{i}") for i in range(10)]
    firsts = await asyncio.gather(*(asyncio.wait_for(s.get(), 10) for s in subs))
    assert all(p is firsts[0] for p in firsts)  # the very same packet object for everyone
    for _ in range(25):
        await asyncio.gather(*(asyncio.wait_for(s.get(), 5) for s in subs))
    assert server.sessions_opened("/cam") == 1 and server.active_sessions("/cam") == 1
    assert stream.sessions_opened == 1
    # On demand: the last consumer leaving closes the only session after the idle delay.
    for s in subs:
        s.close()
    assert await asyncio.to_thread(server.wait_active, "/cam", 0, 10)  # blocking: off the loop
    assert not stream.running


async def test_slow_consumer_does_not_delay_fast_one(hub: Hub, rtsp_server: RtspServer) -> None:
    stream = await hub.put("c8", "main", rtsp(rtsp_server.url("/cam")), always_on=True)
    fast = stream.subscribe("fast")
    slow = stream.subscribe("slow", max_packets=20)
    await asyncio.wait_for(fast.get(), 10)
    start = time.monotonic()
    received = 0
    lags = []
    while time.monotonic() - start < 4:  # the slow consumer never reads
        packet = await asyncio.wait_for(fast.get(), 2)
        lags.append(time.time() - packet.arrival)
        received += 1
    assert received >= 80  # 25 fps for 4 s, less start-up
    assert max(lags) < 0.5
    assert fast.dropped == 0
    assert slow.queued <= 20 and slow.dropped > 0 and slow.overflows >= 1
    # When the slow one reads again it starts at a keyframe.
    assert (await slow.get()).is_video_keyframe
    assert stream.dropped_total() == slow.dropped


async def test_real_footage_with_b_frames(hub: Hub, rtsp_server: RtspServer) -> None:
    if "/vtest" not in rtsp_server.mounts:
        pytest.skip("../shared/media/vtest.avi is absent")
    stream = await hub.put("c9", "main", rtsp(rtsp_server.url("/vtest")), always_on=True)
    sub = stream.subscribe("t")
    for _ in range(50):
        await asyncio.wait_for(sub.get(), 10)
    s = stream.status
    assert (s.width, s.height, s.codec) == (1280, 720, "h264")
    assert s.profile == "High" and s.has_b_frames


async def test_probe_refreshes_health_and_lets_go(
    hub: Hub, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    server = make_rtsp_server({"/cam": "test"})
    stream = await hub.put("c10", "main", rtsp(server.url("/cam")), always_on=False)
    assert not stream.running
    await hub.probe(stream)
    assert stream.status.state == State.ONLINE and not stream.running
    assert await asyncio.to_thread(server.wait_active, "/cam", 0, 5)
    server.stop()
    started = time.monotonic()
    await hub.probe(stream)
    assert stream.status.state == State.OFFLINE and stream.status.reason == Reason.REFUSED
    assert time.monotonic() - started < 4  # the refusal ends the probe, not its timeout
    with pytest.raises(errors.CameraRefused):  # and a snapshot says why at once
        await stream.next_keyframe(timeout=8)
