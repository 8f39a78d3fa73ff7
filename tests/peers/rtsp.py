"""A real RTSP camera for tests: runs ``rtsp_server.py`` (GStreamer) as a subprocess.

How PyAV 18.1 (bundled FFmpeg) fails against this server, measured here with
``av.open(url, options={"rtsp_transport": "tcp"}, timeout=...)`` — the RTSP adapter must
classify exactly these (``tests/peers/test_rtsp_peer.py`` keeps them true):

  situation                              exception (module av.error)    also a builtin
  -------------------------------------  -----------------------------  -----------------------
  no / wrong credentials (401)           HTTPUnauthorizedError          no (HTTPClientError,
                                                                        FFmpegError, Exception)
  wrong path (404)                       HTTPNotFoundError              no (HTTPClientError)
  nothing listens (server stopped)       ConnectionRefusedError         ConnectionRefusedError
  open: server accepts but never         InvalidDataError (!), after    ValueError
    answers; PyAV timeout=T or the       ~T: not a timeout class, so
    FFmpeg option timeout (µs)           tell it apart by elapsed time
  reading: server stalls, PyAV           ExitError ("Immediate exit     no
    timeout=(open, read)                 requested"), ~4 s after the
                                         stall with read=2 s
  reading: server stalls, FFmpeg         TimeoutError (errno 110),      TimeoutError
    option timeout (µs)                  ~4 s after the stall with 2 s
  reading: server stops or is killed     none: demux() just ends (EOF)  -

Also measured: opening the 640x360 test stream takes about 1.2 s (FFmpeg probes the
stream); the first packet of a session has pts None (no RTCP sender report yet). File
mounts send RTP timestamps in decode order (the elementary stream has no PTS), and
FFmpeg then reports a constant dts = pts - reorder delay for them. Server CPU per mount
(shared by all its clients): 640x360 x264 about 9 % of a core, 1280x720 about 22 %, a file
mount about 1 %.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import quote

import av
import pytest

from tests.peers.ports import free_port

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
# Debian's interpreter has gi (python3-gi); the venv's does not.
SYSTEM_PYTHON = "/usr/bin/python3"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Footage shared between projects on this machine and in CI, never copied into the repository.
SHARED_MEDIA = PROJECT_ROOT.parent / "shared" / "media"


def shared_media(name: str) -> Path:
    """``<project root>/../shared/media/<name>``, or skip the test where it is absent."""
    path = SHARED_MEDIA / name
    if not path.is_file():
        pytest.skip(f"shared footage {path} is absent (it is never copied into the repository)")
    return path


def annexb_from_media(src: Path, dst: Path) -> Path:
    """Write the first video stream of ``src`` (H.264 in a container) as Annex-B to ``dst``.

    Containers such as AVI and MP4 carry AVCC (length-prefixed NAL units, SPS/PPS in the
    stream's extradata); an elementary-stream reader needs start codes and in-band SPS/PPS,
    which is what ``h264_mp4toannexb`` produces. Written to a temporary name first so a
    half-written file is never taken for a finished one.
    """
    partial = dst.with_name(dst.name + ".part")
    with av.open(str(src)) as container, partial.open("wb") as out:
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise ValueError(f"{src}: video is {stream.codec_context.name}, not h264")
        bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        for packet in container.demux(stream):
            if packet.size == 0:  # demux() ends with an empty flush packet
                continue
            for filtered in bsf.filter(packet):
                out.write(bytes(filtered))
        for filtered in bsf.filter(None):  # drain what the filter still holds
            out.write(bytes(filtered))
    partial.replace(dst)
    return dst


class RtspServerError(RuntimeError):
    """The RTSP server script did not start; the message carries its stderr."""


class RtspServer:
    """GStreamer's RTSP server on 127.0.0.1, one mount per entry of ``mounts``.

    ``mounts`` maps a path to a SPEC of ``rtsp_server.py`` (``"test"``,
    ``"test,width=1280,height=720,bframes"``, ``"file:/tmp/clip.h264"``; add ``auth`` to
    require ``user``/``password``). Session counters are parsed from the script's stdout by a
    reader thread; ``sessions_opened`` survives restarts, ``active_sessions`` starts at 0 with
    each process.
    """

    def __init__(
        self,
        mounts: Mapping[str, str],
        *,
        user: str | None = None,
        password: str | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        self.mounts = dict(mounts)
        self.user = user
        self.password = password
        self.port = free_port()
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None
        self._changed = threading.Condition()
        self._ready = False
        self._opened: Counter[str] = Counter()
        self._active: Counter[str] = Counter()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> RtspServer:
        if self._proc is not None:
            raise RuntimeError("already running")
        argv = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for path, spec in self.mounts.items():
            argv += ["--mount", f"{path}={spec}"]
        if self.user is not None and self.password is not None:
            argv += ["--user", self.user, "--password", self.password]
        # A file, not a pipe: nobody has to drain it, and it is there to quote on failure.
        self._stderr = tempfile.TemporaryFile()
        with self._changed:
            self._ready = False
            self._active.clear()
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self._reader = threading.Thread(
            target=self._read_stdout, args=(self._proc,), name=f"rtsp-{self.port}", daemon=True
        )
        self._reader.start()
        with self._changed:
            ready = self._changed.wait_for(
                lambda: self._ready or self._proc is None or self._proc.poll() is not None,
                timeout=self._ready_timeout,
            )
            ready = ready and self._ready
        if not ready:
            stderr = self._stderr_text()
            self.stop()
            raise RtspServerError(
                f"RTSP server on port {self.port} not ready within {self._ready_timeout} s;"
                f" argv={argv!r}; stderr:\n{stderr}"
            )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if the server has not exited within ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGCONT)  # a frozen server must run to see SIGTERM
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        # The reader sees EOF once the process is gone; joining it means no late line from
        # this process can touch the counters of the next one.
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        with self._changed:
            self._active.clear()  # a stopped server has no sessions, whatever it printed
            self._changed.notify_all()

    def restart(self) -> RtspServer:
        """Stop and start again on the same port (clients see the camera reboot)."""
        self.stop()
        return self.start()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("not running")
        return self._proc.pid

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open but nothing is answered or sent."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    # --- addresses and counters ----------------------------------------------------------

    def url(self, path: str, user: str | None = None, password: str | None = None) -> str:
        if not path.startswith("/"):
            path = "/" + path
        userinfo = ""
        if user is not None:
            userinfo = quote(user, safe="")
            if password is not None:
                userinfo += ":" + quote(password, safe="")
            userinfo += "@"
        return f"rtsp://{userinfo}127.0.0.1:{self.port}{path}"

    def sessions_opened(self, path: str) -> int:
        """RTSP sessions ever set up on ``path`` by this object's server processes."""
        with self._changed:
            return self._opened[path]

    def active_sessions(self, path: str) -> int:
        with self._changed:
            return self._active[path]

    def wait_active(self, path: str, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``path`` has exactly ``count`` open sessions; False on timeout.

        The server reports sessions asynchronously (a client's close reaches it a moment
        later), so tests wait for a count instead of sampling it.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._active[path] == count, timeout=timeout)

    # --- internals -----------------------------------------------------------------------

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, _, path = line.strip().partition(" ")
            with self._changed:
                if kind == "READY":
                    self._ready = True
                elif kind == "SESSION-OPEN":
                    self._opened[path] += 1
                    self._active[path] += 1
                elif kind == "SESSION-CLOSE":
                    self._active[path] -= 1
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()  # wake start() if the process died before READY

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]
