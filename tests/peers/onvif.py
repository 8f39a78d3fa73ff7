"""A real ONVIF camera (ipycam, ``onvif_camera.py``) in a private network namespace.

ipycam binds every interface with no option to change that, so the camera — and the
client under test — run inside a namespace that the test creates and deletes: nothing
leaves it, and nothing outside sees the camera. :class:`NetNamespace` moves the calling
thread into the namespace (``setns``) for the duration of a ``with`` block; every thread
and socket created from it meanwhile lives there too (Linux namespaces are per thread and
inherited), which is how the in-process gateway, its hub threads and aiohttp reach the
camera on the namespace's loopback. Multicast needs the loopback flagged for it and a
route for 224.0.0.0/4, which the namespace gets on creation.

Requires root (``ip netns``) and Debian ``ffmpeg`` (ipycam's RTSP server runs it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from tests.peers.ports import free_port

CAMERA_SCRIPT = Path(__file__).with_name("onvif_camera.py")
PREFIX = "sharpeyes-test-"
_CLONE_NEWNET = 0x40000000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def require_namespaces() -> None:
    """Skip where network namespaces, ipycam or ffmpeg are not available."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ipycam needs ffmpeg on PATH (Debian package ffmpeg)")
    try:
        import ipycam  # noqa: F401
    except ImportError:
        pytest.skip("ipycam is not installed (the test extra)")


def _remove_stale() -> None:
    """Namespaces left by test runs that were killed before they could clean up."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                _ip("netns", "delete", name)


class NetNamespace:
    """``with NetNamespace() as ns:`` — this thread (and threads it starts) inside ``ns``."""

    _count = 0

    def __init__(self) -> None:
        NetNamespace._count += 1
        self.name = f"{PREFIX}{os.getpid()}-{NetNamespace._count}"
        self._home: int | None = None

    def __enter__(self) -> NetNamespace:
        _remove_stale()
        _ip("netns", "add", self.name)
        try:
            for args in (
                ("link", "set", "lo", "up"),
                ("link", "set", "lo", "multicast", "on"),
                ("route", "add", "224.0.0.0/4", "dev", "lo"),
            ):
                _ip("netns", "exec", self.name, "ip", *args)
            self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
        except BaseException:
            self._leave()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._home is not None:
            _setns(self._home)
            os.close(self._home)
            self._home = None
        with contextlib.suppress(subprocess.SubprocessError):
            _ip("netns", "delete", self.name)

    def popen(self, argv: list[str], **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            ["ip", "netns", "exec", self.name, *argv], text=True, **kwargs
        )


class OnvifCameraError(RuntimeError):
    """The simulator did not start; the message carries its stderr."""


class OnvifCamera:
    """ipycam in ``ns`` on free ports, with ``user``/``password`` enforced when given."""

    def __init__(
        self,
        ns: NetNamespace,
        *,
        user: str = "",
        password: str = "",
        clock_offset: float = 0.0,
        ptz: bool = True,
        ready_timeout: float = 20.0,
    ) -> None:
        self.ns = ns
        self.user = user
        self.password = password
        self.port = free_port()  # chosen in the namespace: this thread is inside it
        self.rtsp_port = free_port()
        self._extra = ["--clock-offset", str(clock_offset)] + ([] if ptz else ["--no-ptz"])
        self._ready_timeout = ready_timeout
        self._workdir = tempfile.TemporaryDirectory(prefix="ipycam-")
        self._proc: subprocess.Popen[str] | None = None
        self._stderr = Path(self._workdir.name) / "stderr.log"
        self._lines: list[str] = []
        self._changed = threading.Condition()

    def start(self) -> OnvifCamera:
        # -P: the script's folder is not put on sys.path, where this module would shadow
        # the onvif package.
        argv = [sys.executable, "-P", str(CAMERA_SCRIPT), "--port", str(self.port)]
        argv += ["--rtsp-port", str(self.rtsp_port), *self._extra]
        if self.user:
            argv += ["--user", self.user, "--password", self.password]
        with self._changed:
            self._lines.clear()
        with self._stderr.open("a") as stderr:
            self._proc = self.ns.popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self._workdir.name,  # ipycam saves presets into its working folder
            )
        threading.Thread(target=self._read, args=(self._proc,), daemon=True).start()
        if not self._wait_line("READY", self._ready_timeout):
            self.stop()
            raise OnvifCameraError(f"ipycam did not start:\n{self._stderr.read_text()[-3000:]}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def restart(self) -> OnvifCamera:
        """Stop and start on the same ports: the gateway sees the camera reboot."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._workdir.cleanup()

    def __enter__(self) -> OnvifCamera:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def device_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/onvif/device_service"

    def publish(self, kind: str, active: bool) -> None:
        """Queue an alarm for every PullPoint subscription: ``motion``, ``tamper``, ``input``."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(f"event {kind} {str(active).lower()}\n")
        self._proc.stdin.flush()
        assert self._wait_line(f"PUBLISHED {kind}", 5), "the simulator did not take the event"

    def ptz_position(self) -> dict[str, float]:
        """The position as ipycam's own web API reports it (not through ONVIF)."""
        response = httpx.get(
            f"http://127.0.0.1:{self.port}/api/ptz", auth=(self.user, self.password), timeout=5
        )
        response.raise_for_status()
        body: dict[str, float] = response.json()
        return body

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self._lines.append(line.strip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _wait_line(self, prefix: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, line in enumerate(self._lines):
                    if line.startswith(prefix):
                        del self._lines[index]
                        return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._proc is None or self._proc.poll() is not None:
                    return False
                self._changed.wait(remaining)
