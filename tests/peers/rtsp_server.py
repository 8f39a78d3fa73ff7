#!/usr/bin/python3
"""A real RTSP camera for tests: GStreamer's RTSP server, driven from Python through gi.

Run it with Debian's interpreter (``/usr/bin/python3``), which has ``gi``; the project venv
does not. It binds 127.0.0.1 only and offers TCP-interleaved transport only, so RTP rides
on the RTSP socket and no UDP port is ever opened on 0.0.0.0.

    rtsp_server.py --port 8554 --mount /cam=test --mount /hd=test,width=1280,height=720
        --mount /clip=file:/tmp/vtest.h264 --mount /auth=test,auth --user admin --password s

A mount SPEC is a source followed by comma-separated options:

- ``test``: videotestsrc (ball) + timeoverlay encoded by x264enc, baseline profile, no
  B-frames. Options ``width``, ``height``, ``fps``, ``gop`` (x264 key-int-max),
  ``bitrate`` (kbit/s), and the flags ``bframes`` (High profile with B-frames, like many
  real cameras' main streams) and ``hevc`` (x265enc instead of x264enc).
- ``file:PATH``: loops an Annex-B H.264 elementary stream (real footage) at the frame rate
  its SPS declares, without re-encoding.
- the flag ``auth`` on either: the mount needs ``--user``/``--password`` (basic or digest);
  other mounts stay open to anonymous clients.

Protocol on stdout (line-buffered, for the harness in ``rtsp.py``):
``READY <port>`` once listening; ``SESSION-OPEN <path>`` when a client's RTSP session is set
up; ``SESSION-CLOSE <path>`` when that session goes (TEARDOWN, or its connection closes).
SIGTERM and SIGINT stop the server with exit status 0.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# The role names carried by RTSPAuth tokens; a mount's permissions name which roles may use it.
ANONYMOUS_ROLE = "anonymous"
USER_ROLE = "user"
FILE_PARSER = "parse"  # element name of the h264parse in file mounts


@dataclass
class Mount:
    path: str
    launch: str
    auth: bool  # clients must present --user/--password
    is_file: bool


@dataclass
class SyntheticOptions:
    width: int = 640
    height: int = 360
    fps: int = 25
    gop: int | None = None  # default: one second, so a new client waits at most ~1 s for IDR
    bitrate: int | None = None  # kbit/s; default scales with the picture size
    bframes: bool = False
    hevc: bool = False


def synthetic_launch(opts: SyntheticOptions) -> str:
    gop = opts.gop or opts.fps
    # About 0.1 bit per pixel per frame at 25 fps: 640x360 -> ~600 kbit/s, 720p -> ~2.3 Mbit/s.
    bitrate = opts.bitrate or max(200, opts.width * opts.height * opts.fps // 10_000)
    source = (
        "videotestsrc is-live=true pattern=ball"
        f" ! video/x-raw,width={opts.width},height={opts.height},framerate={opts.fps}/1"
        ' ! timeoverlay font-desc="Sans 24"'
    )
    if opts.hevc:
        encode = (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop}"
            f" bitrate={bitrate} ! video/x-h265,profile=main"
            " ! rtph265pay name=pay0 pt=96 config-interval=1"
        )
    elif opts.bframes:
        # tune=zerolatency forces bframes=0, so leave it out and keep lookahead at zero.
        encode = (
            f"x264enc speed-preset=ultrafast bframes=2 b-adapt=false rc-lookahead=0 dct8x8=true"
            f" key-int-max={gop} bitrate={bitrate} ! video/x-h264,profile=high"
            " ! rtph264pay name=pay0 pt=96 config-interval=1"
        )
    else:
        encode = (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop}"
            f" bitrate={bitrate} ! video/x-h264,profile=baseline"
            " ! rtph264pay name=pay0 pt=96 config-interval=1"
        )
    return f"( {source} ! {encode} )"


def file_launch(path: Path) -> str:
    # multifilesrc re-reads the whole file at EOF; h264parse splits it into access units and
    # stamps them from the SPS frame rate, and the server's sink paces them in real time.
    # config-interval=-1 repeats SPS/PPS with every IDR so late joiners can decode.
    return (
        f'( multifilesrc location="{path}" loop=true caps=video/x-h264,stream-format=byte-stream'
        f" ! h264parse name={FILE_PARSER} ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


def pts_from_dts(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    """Give every access unit a PTS equal to its DTS.

    An elementary stream carries no timestamps; h264parse derives DTS from the frame rate
    but cannot know the PTS of reordered (B-) frames, and rtph264pay takes the RTP timestamp
    from the PTS, so without this every packet would carry the same RTP time. Decode order
    times are monotonic, which is all a client needs; exact B-frame PTS are what the
    ``test,bframes`` mounts are for.
    """
    buffer = info.get_buffer()
    if buffer.pts == Gst.CLOCK_TIME_NONE:
        buffer.pts = buffer.dts
    return Gst.PadProbeReturn.OK


def on_file_media(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
    parser = media.get_element().get_by_name(FILE_PARSER)
    parser.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, pts_from_dts)


def parse_mount(text: str) -> Mount:
    path, sep, spec = text.partition("=")
    if not sep or not path.startswith("/") or not spec:
        raise argparse.ArgumentTypeError(f"expected /PATH=SPEC, got {text!r}")
    source, *options = spec.split(",")
    flags = {o for o in options if "=" not in o}
    values = dict(o.split("=", 1) for o in options if "=" in o)
    unknown_flags = flags - {"auth", "bframes", "hevc"}
    if unknown_flags:
        raise argparse.ArgumentTypeError(f"unknown flags {sorted(unknown_flags)} in {text!r}")
    if source == "test":
        if {"bframes", "hevc"} <= flags:
            raise argparse.ArgumentTypeError(f"bframes is for H.264, not with hevc: {text!r}")
        try:
            ints = {k: int(v) for k, v in values.items()}
            opts = SyntheticOptions(**ints, bframes="bframes" in flags, hevc="hevc" in flags)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"bad test options in {text!r}: {exc}") from exc
        return Mount(path, synthetic_launch(opts), auth="auth" in flags, is_file=False)
    if source.startswith("file:"):
        file = Path(source.removeprefix("file:"))
        if values or flags - {"auth"}:
            raise argparse.ArgumentTypeError(f"file mounts take only the auth flag: {text!r}")
        if not file.is_file():
            raise argparse.ArgumentTypeError(f"no such file: {file}")
        return Mount(path, file_launch(file), auth="auth" in flags, is_file=True)
    raise argparse.ArgumentTypeError(f"unknown source {source!r} in {text!r}")


class MountTable:
    """Maps a request path (``/cam``, ``/cam/stream=0``) to the mount that serves it."""

    def __init__(self, mounts: list[Mount]) -> None:
        # Longest first, so /cam/hd is not taken for /cam.
        self._mounts = sorted(mounts, key=lambda m: len(m.path), reverse=True)

    def find(self, abspath: str) -> Mount | None:
        for mount in self._mounts:
            if abspath == mount.path or abspath.startswith(mount.path.rstrip("/") + "/"):
                return mount
        return None

    def is_protected(self, abspath: str) -> bool:
        mount = self.find(abspath)
        return mount is not None and mount.auth


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class SessionTracker:
    """Prints SESSION-OPEN/SESSION-CLOSE and ends sessions whose connection has closed.

    gst-rtsp-server keeps a session in its pool after the client's TCP connection is gone
    (until a timeout that nothing runs here). Over TCP-interleaved transport a session cannot
    outlive its connection, and cameras drop it at once, so this does the same: the count of
    open sessions then equals the number of connected clients.
    """

    def __init__(self, server: GstRtspServer.RTSPServer, table: MountTable) -> None:
        self._table = table
        self._pool = server.get_session_pool()
        self._paths: dict[str, str] = {}  # session id -> mount path
        server.connect("client-connected", self._on_client)
        # Emitted for TEARDOWN and for the removals done in _on_closed.
        self._pool.connect("session-removed", self._on_removed)

    def _on_client(
        self, _server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
    ) -> None:
        owned: set[str] = set()  # ids of the sessions this connection set up
        # "setup-request" fires after a SETUP succeeded, when ctx.session is the session.
        client.connect("setup-request", lambda _c, ctx: self._on_setup(ctx, owned))
        client.connect("closed", lambda _c: self._on_closed(owned))

    def _on_setup(self, ctx: GstRtspServer.RTSPContext, owned: set[str]) -> None:
        session_id = ctx.session.get_sessionid()
        owned.add(session_id)
        if session_id not in self._paths:  # one SETUP per stream; report the session once
            mount = self._table.find(ctx.uri.abspath)
            self._paths[session_id] = mount.path if mount else ctx.uri.abspath
            emit(f"SESSION-OPEN {self._paths[session_id]}")

    def _on_closed(self, owned: set[str]) -> None:
        for session_id in owned:
            session = self._pool.find(session_id)
            if session is not None:  # None when the client sent TEARDOWN first
                self._pool.remove(session)

    def _on_removed(
        self, _pool: GstRtspServer.RTSPSessionPool, session: GstRtspServer.RTSPSession
    ) -> None:
        path = self._paths.pop(session.get_sessionid(), None)
        if path is not None:
            emit(f"SESSION-CLOSE {path}")


def enable_basic_and_digest(auth: GstRtspServer.RTSPAuth) -> None:
    """Offer both Basic and Digest challenges (the default is Basic only).

    The C argument is a bit mask, but GI describes RTSPAuthMethod as an enum and PyGObject
    rejects BASIC|DIGEST (3), so call the C function directly on the object's pointer.
    """
    pointer_of = ctypes.pythonapi.PyCapsule_GetPointer
    pointer_of.restype = ctypes.c_void_p
    pointer_of.argtypes = [ctypes.py_object, ctypes.c_char_p]
    lib = ctypes.CDLL("libgstrtspserver-1.0.so.0")
    lib.gst_rtsp_auth_set_supported_methods.argtypes = [ctypes.c_void_p, ctypes.c_int]
    methods = int(GstRtsp.RTSPAuthMethod.BASIC) | int(GstRtsp.RTSPAuthMethod.DIGEST)
    lib.gst_rtsp_auth_set_supported_methods(pointer_of(auth.__gpointer__, None), methods)


def role_token(role: str) -> GstRtspServer.RTSPToken:
    token = GstRtspServer.RTSPToken.new()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role)
    return token


class MountAuth(GstRtspServer.RTSPAuth):
    """Basic + digest credentials for the auth mounts; anonymous access to the others.

    RTSPAuth's default token would be granted to every client without valid credentials,
    and a mount that denies it answers 404, not 401, so a client never learns it should
    authenticate. Instead an anonymous token is handed out only for open mounts; elsewhere
    the token stays empty and the server answers 401 with Basic and Digest challenges.
    """

    def __init__(self, user: str, password: str, table: MountTable) -> None:
        super().__init__()
        self._table = table
        self._anonymous = role_token(ANONYMOUS_ROLE)
        enable_basic_and_digest(self)
        token = role_token(USER_ROLE)
        self.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        self.add_digest(user, password, token)

    def do_authenticate(self, ctx: GstRtspServer.RTSPContext) -> bool:
        GstRtspServer.RTSPAuth.do_authenticate(self, ctx)  # sets ctx.token on valid credentials
        if ctx.token is None and not self._table.is_protected(ctx.uri.abspath if ctx.uri else ""):
            ctx.set_token(self._anonymous)
        return True


def make_factory(mount: Mount, with_auth: bool) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(mount.launch)
    factory.set_shared(True)  # every client of a mount shares one pipeline, like a camera
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    if mount.is_file:
        factory.connect("media-configure", on_file_media)
    if with_auth:
        roles = [USER_ROLE] if mount.auth else [USER_ROLE, ANONYMOUS_ROLE]
        for role in roles:
            factory.add_role_from_structure(
                Gst.Structure.new_from_string(
                    f"{role}, media.factory.access=(boolean)true,"
                    " media.factory.construct=(boolean)true"
                )
            )
    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", type=parse_mount, action="append", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args(argv)
    mounts: list[Mount] = args.mount
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    if any(m.auth for m in mounts) and args.user is None:
        parser.error("a mount with the auth flag needs --user and --password")

    Gst.init(None)
    for mount in mounts:
        # The server builds a mount's pipeline only when a client asks for it and would then
        # answer 503; building each once here turns a missing plugin into a clear exit.
        try:
            Gst.parse_launch(mount.launch)
        except GLib.Error as exc:
            parser.error(f"{mount.path}: cannot build {mount.launch!r}: {exc.message}")
    table = MountTable(mounts)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    with_auth = args.user is not None
    if with_auth:
        server.set_auth(MountAuth(args.user, args.password, table))
    points = server.get_mount_points()
    for mount in mounts:
        points.add_factory(mount.path, make_factory(mount, with_auth))
    SessionTracker(server, table)

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 2
    emit(f"READY {server.get_bound_port()}")
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
