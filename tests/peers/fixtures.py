"""Pytest fixtures that run real peers (loaded by ``tests/conftest.py``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.peers.onvif import NetNamespace, OnvifCamera, require_namespaces
from tests.peers.rtsp import SHARED_MEDIA, RtspServer, annexb_from_media, shared_media

RTSP_USER = "admin"
ONVIF_USER = "admin"


@pytest.fixture(scope="session")
def vtest_h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``vtest.avi`` as an Annex-B H.264 file, converted once per run; skips if absent."""
    return annexb_from_media(
        shared_media("vtest.avi"), tmp_path_factory.mktemp("media") / "vtest.h264"
    )


@pytest.fixture(scope="session")
def rtsp_server(request: pytest.FixtureRequest) -> Iterator[RtspServer]:
    """One camera server for the whole run: ``/cam`` (640x360 25 fps baseline, open),
    ``/auth`` (the same, user ``admin`` with ``rtsp_server.password``) and, where the shared
    footage exists, ``/vtest`` (real 720p High-profile footage with B-frames, looping).

    Shared by every test: do not stop or restart it, and count sessions as differences
    (or use ``make_rtsp_server`` for a camera of your own).
    """
    mounts = {"/cam": "test", "/auth": "test,auth"}
    if (SHARED_MEDIA / "vtest.avi").is_file():
        mounts["/vtest"] = f"file:{request.getfixturevalue('vtest_h264')}"
    with RtspServer(mounts, user=RTSP_USER, password=secrets.token_urlsafe(12)) as server:
        yield server


@pytest.fixture
def make_rtsp_server() -> Iterator[Callable[..., RtspServer]]:
    """Start private RTSP servers, e.g. ``make_rtsp_server({"/cam": "test,gop=50"})``;
    all are stopped after the test."""
    servers: list[RtspServer] = []

    def make(
        mounts: Mapping[str, str], *, user: str | None = None, password: str | None = None
    ) -> RtspServer:
        server = RtspServer(mounts, user=user, password=password)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def onvif_netns() -> Iterator[NetNamespace]:
    """A private network namespace that the test module runs in (see tests/peers/onvif.py);
    deleted afterwards, even when a test fails. Skips without root, ffmpeg or ipycam."""
    require_namespaces()
    with NetNamespace() as ns:
        yield ns


@pytest.fixture(scope="module")
def onvif_camera(onvif_netns: NetNamespace) -> Iterator[OnvifCamera]:
    """An ONVIF camera for the module: ipycam with user ``admin`` and
    ``onvif_camera.password``, PTZ, PullPoint events; 640x360 main and 320x180 sub streams."""
    password = secrets.token_urlsafe(12)
    with OnvifCamera(onvif_netns, user=ONVIF_USER, password=password) as camera:
        yield camera
