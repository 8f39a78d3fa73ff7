"""The RTSP camera peer works, seen from PyAV (the client the gateway uses).

Also pins the exception classes PyAV raises per failure (the table in ``rtsp.py``): the RTSP
adapter classifies failures by them, so a PyAV upgrade that changes one must fail here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import av
import av.container
import pytest

from tests.peers.rtsp import RtspServer, annexb_from_media, shared_media

OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 5.0

MakeServer = Callable[..., RtspServer]


def open_rtsp(
    url: str,
    *,
    timeout: float | tuple[float, float] | None = (OPEN_TIMEOUT, READ_TIMEOUT),
    options: Mapping[str, str] | None = None,
) -> av.container.InputContainer:
    """``timeout`` is PyAV's (open, read) watchdog; ``options`` are FFmpeg's."""
    return av.open(url, options={"rtsp_transport": "tcp", **(options or {})}, timeout=timeout)


def video_packets(container: av.container.InputContainer) -> Iterator[av.Packet[av.VideoStream]]:
    for packet in container.demux(container.streams.video[0]):
        if packet.size:  # skip the empty flush packet at the end
            yield packet


def read_video(
    container: av.container.InputContainer, count: int
) -> list[av.Packet[av.VideoStream]]:
    packets = []
    for packet in video_packets(container):
        packets.append(packet)
        if len(packets) == count:
            break
    return packets


def test_cam_serves_small_baseline_h264(
    rtsp_server: RtspServer, record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    with open_rtsp(rtsp_server.url("/cam")) as container:
        opened = time.monotonic() - started
        record_property("pyav_open_seconds", round(opened, 2))
        codec = container.streams.video[0].codec_context
        assert (codec.name, codec.width, codec.height) == ("h264", 640, 360)
        assert codec.profile == "Constrained Baseline"
        packets = read_video(container, 50)  # two seconds at 25 fps: at least one IDR
    assert len(packets) == 50
    assert any(p.is_keyframe for p in packets)
    assert all(p.pts == p.dts for p in packets[1:])  # no B-frames
    assert opened < 5.0


def test_auth_mount_answers_401_without_the_right_password(rtsp_server: RtspServer) -> None:
    user, password = rtsp_server.user, rtsp_server.password
    assert user is not None and password is not None
    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(rtsp_server.url("/auth"))
    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(rtsp_server.url("/auth", user, password + "x"))
    with open_rtsp(rtsp_server.url("/auth", user, password)) as container:
        assert len(read_video(container, 5)) == 5


def test_open_mount_ignores_credentials(rtsp_server: RtspServer) -> None:
    with open_rtsp(rtsp_server.url("/cam", "someone", "anything")) as container:
        assert len(read_video(container, 5)) == 5


def test_unknown_path_is_404(rtsp_server: RtspServer) -> None:
    with pytest.raises(av.error.HTTPNotFoundError):
        open_rtsp(rtsp_server.url("/no-such-camera"))


def test_stopped_server_refuses_connections(make_rtsp_server: MakeServer) -> None:
    server = make_rtsp_server({"/cam": "test"})
    server.stop()
    with pytest.raises(av.error.ConnectionRefusedError) as caught:
        open_rtsp(server.url("/cam"))
    assert isinstance(caught.value, ConnectionRefusedError)  # the builtin, too


@pytest.mark.parametrize(
    ("timeout", "options"),
    [
        pytest.param(1.0, {}, id="pyav-timeout"),
        pytest.param(None, {"timeout": "1000000"}, id="ffmpeg-timeout"),
    ],
)
def test_silent_server_fails_open_with_invalid_data(
    timeout: float | None, options: dict[str, str]
) -> None:
    # A socket that listens but never accepts: the kernel completes the TCP handshake and the
    # RTSP request goes unanswered, like a hung camera.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"rtsp://127.0.0.1:{listener.getsockname()[1]}/cam"
        started = time.monotonic()
        with pytest.raises(av.error.InvalidDataError):
            open_rtsp(url, timeout=timeout, options=options)
        assert 0.9 < time.monotonic() - started < 5.0


def test_stalled_stream_times_out_while_reading(make_rtsp_server: MakeServer) -> None:
    server = make_rtsp_server({"/cam": "test"})
    with (
        open_rtsp(server.url("/cam"), timeout=None, options={"timeout": "1000000"}) as by_option,
        open_rtsp(server.url("/cam"), timeout=(OPEN_TIMEOUT, 1.0)) as by_pyav,
    ):
        read_video(by_option, 5)
        read_video(by_pyav, 5)
        server.freeze()
        try:
            with pytest.raises(av.error.TimeoutError) as caught:
                for _ in video_packets(by_option):
                    pass
            assert isinstance(caught.value, TimeoutError)
            with pytest.raises(av.error.ExitError):
                for _ in video_packets(by_pyav):
                    pass
        finally:
            server.thaw()


def test_server_stop_ends_the_stream_without_error(make_rtsp_server: MakeServer) -> None:
    server = make_rtsp_server({"/cam": "test"})
    with open_rtsp(server.url("/cam")) as container:
        read_video(container, 5)
        server.stop()
        started = time.monotonic()
        # What FFmpeg buffered while probing still comes out, then demux() just ends: no
        # exception, well before the read timeout (which would raise ExitError).
        for _ in video_packets(container):
            pass
    assert time.monotonic() - started < READ_TIMEOUT


def test_restart_serves_again_on_the_same_port(make_rtsp_server: MakeServer) -> None:
    server = make_rtsp_server({"/cam": "test"})
    url = server.url("/cam")
    with open_rtsp(url) as container:
        assert len(read_video(container, 5)) == 5
    server.restart()
    assert server.url("/cam") == url
    with open_rtsp(url) as container:
        assert len(read_video(container, 5)) == 5
    assert server.sessions_opened("/cam") == 2


def test_each_client_is_one_session(make_rtsp_server: MakeServer) -> None:
    server = make_rtsp_server({"/cam": "test", "/other": "test"})
    with open_rtsp(server.url("/cam")) as first:
        read_video(first, 1)
        with open_rtsp(server.url("/cam")) as second:
            read_video(second, 1)
            assert server.wait_active("/cam", 2)
            assert server.sessions_opened("/cam") == 2
        assert server.wait_active("/cam", 1)
    assert server.wait_active("/cam", 0)
    assert server.sessions_opened("/cam") == 2
    assert server.sessions_opened("/other") == 0


def test_bframes_and_hevc_mounts(make_rtsp_server: MakeServer) -> None:
    server = make_rtsp_server({"/b": "test,bframes", "/h": "test,hevc,width=320,height=180"})
    with open_rtsp(server.url("/b")) as container:
        assert container.streams.video[0].codec_context.profile == "High"
        packets = read_video(container, 25)
    assert any(p.pts != p.dts for p in packets[1:])  # reordered frames
    with open_rtsp(server.url("/h")) as container:
        codec = container.streams.video[0].codec_context
        assert (codec.name, codec.width, codec.height) == ("hevc", 320, 180)
        assert len(read_video(container, 5)) == 5


def test_vtest_mount_loops_real_footage(rtsp_server: RtspServer) -> None:
    shared_media("vtest.avi")  # skip, with the reason, where the footage is absent
    with open_rtsp(rtsp_server.url("/vtest")) as container:
        codec = container.streams.video[0].codec_context
        assert (codec.name, codec.profile, codec.width, codec.height) == ("h264", "High", 1280, 720)
        packets = read_video(container, 50)
    dts = [p.dts for p in packets if p.dts is not None]
    assert dts == sorted(dts) and len(set(dts)) == len(dts)  # paced, monotonic timestamps


def test_annexb_from_media_keeps_every_packet(tmp_path: Path) -> None:
    src = shared_media("vtest.avi")
    dst = annexb_from_media(src, tmp_path / "vtest.h264")
    assert dst.read_bytes()[:4] == b"\x00\x00\x00\x01"
    with av.open(str(src)) as container:
        expected = sum(1 for _ in video_packets(container))
    with av.open(str(dst), format="h264") as container:
        converted = list(video_packets(container))
    assert len(converted) == expected
    assert converted[0].is_keyframe
