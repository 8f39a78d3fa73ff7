"""The SSRF table: what a camera, ONVIF or snapshot URL may point at (gateway/netpolicy.py).

Names are resolved by the real system resolver (getaddrinfo, as FFmpeg does) except the
attacker-controlled ones, which a fake resolver maps; nothing here leaves the host.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import av
import httpx
import pytest

from gateway import errors
from gateway.netpolicy import (
    DestinationRefused,
    IPAddress,
    NetPolicy,
    NotAllowed,
    Purpose,
    system_resolver,
)
from gateway.settings import SecuritySettings
from tests.inprocess import gateway_client

GATEWAY_PORT = 8080
EVIL = {
    "cam.evil.test": ["127.0.0.1"],  # a name resolving to loopback
    "mixed.evil.test": ["10.0.0.8", "127.0.0.1"],  # one good address does not save it
    "meta.evil.test": ["169.254.169.254"],
    "camera.lan.test": ["10.0.0.9"],
}


def resolver(host: str, port: int) -> list[IPAddress]:
    if host in EVIL:
        return [ipaddress.ip_address(a) for a in EVIL[host]]
    return system_resolver(host, port)


def policy(**settings: object) -> NetPolicy:
    return NetPolicy(SecuritySettings(**settings), own_ports={GATEWAY_PORT}, resolver=resolver)


REFUSED_STREAMS = [
    ("rtsp://127.0.0.1/live", "loopback"),
    ("rtsp://2130706433/live", "loopback"),  # decimal
    ("rtsp://0177.0.0.1/live", "loopback"),  # octal
    ("rtsp://0x7f.1/live", "loopback"),  # hex, short form
    ("rtsp://127.1:554/live", "loopback"),
    ("rtsp://[::1]/live", "loopback"),
    ("rtsp://[::ffff:127.0.0.1]/live", "loopback"),  # IPv4-mapped IPv6
    ("rtsp://0.0.0.0/live", "loopback"),  # reaches this host on Linux
    ("rtsp://localhost/live", "loopback"),
    ("rtsp://cam.evil.test/live", "loopback"),
    ("rtsp://mixed.evil.test/live", "loopback"),
    ("rtsp://169.254.169.254/latest", "metadata"),
    ("rtsp://meta.evil.test/latest", "metadata"),
    ("rtsp://100.100.100.200/latest", "metadata"),  # Alibaba Cloud, inside 100.64/10
    ("rtsp://169.254.10.20/live", "link-local"),
    ("rtsp://[fe80::1]/live", "link-local"),
    ("rtsp://8.8.8.8/live", "outside the configured camera networks"),
    ("file:///etc/passwd", "rtsp:// or rtsps://"),
    ("concat:rtsp://10.0.0.1/a|file:///etc/passwd", "rtsp:// or rtsps://"),
    ("subfile:,start,0,end,0,:/etc/passwd", "rtsp:// or rtsps://"),
    ("http://10.0.0.5/stream", "rtsp:// or rtsps://"),
    ("rtmp://10.0.0.5/live", "rtsp:// or rtsps://"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_STREAMS)
def test_refused_stream_urls(url: str, why: str) -> None:
    with pytest.raises(DestinationRefused, match=why):
        policy().check_sync(url, Purpose.STREAM, field="main_url")


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://10.0.0.5:554/Streaming/101",
        "rtsps://192.168.1.64/live",
        "rtsp://172.16.3.3/live",
        "rtsp://100.64.1.1/live",  # carrier-grade NAT of provincial video networks
        "rtsp://camera.lan.test/live",
        "rtsp://[fd12::5]/live",
        "demo://any?width=64&height=64",  # synthesised in-process: no network
    ],
)
def test_allowed_stream_urls(url: str) -> None:
    policy().check_sync(url, Purpose.STREAM)


def test_http_purpose_is_for_onvif_and_snapshots() -> None:
    policy().check_sync("http://10.0.0.5/onvif/snapshot", Purpose.HTTP)
    with pytest.raises(DestinationRefused, match="http:// or https://"):
        policy().check_sync("rtsp://10.0.0.5/", Purpose.HTTP)
    with pytest.raises(DestinationRefused, match="http:// or https://"):
        policy().check_sync("demo://x", Purpose.HTTP)
    with pytest.raises(DestinationRefused, match="metadata"):
        policy().check_sync("http://169.254.169.254/latest/meta-data/", Purpose.HTTP)


def test_the_gateways_own_port_is_refused_even_when_loopback_is_allowed() -> None:
    allowing = policy(allow_loopback_cameras=True)
    allowing.check_sync("rtsp://127.0.0.1:8554/live", Purpose.STREAM)
    with pytest.raises(DestinationRefused, match="own service port"):
        allowing.check_sync(f"http://127.0.0.1:{GATEWAY_PORT}/api/v1/cameras", Purpose.HTTP)
    policy(allow_loopback_cameras=True, allow_own_ports=True).check_sync(
        f"http://127.0.0.1:{GATEWAY_PORT}/", Purpose.HTTP
    )


def test_explicit_allowances() -> None:
    policy(allow_link_local_cameras=True).check_sync("rtsp://169.254.10.20/", Purpose.STREAM)
    policy(camera_networks=["0.0.0.0/0"]).check_sync("rtsp://8.8.8.8/", Purpose.STREAM)
    # Metadata stays refused inside an allowed network, unless removed from the block list.
    with pytest.raises(DestinationRefused, match="metadata"):
        policy(allow_link_local_cameras=True).check_sync("rtsp://169.254.169.254/", "stream")  # type: ignore[arg-type]
    policy(allow_link_local_cameras=True, blocked_networks=[]).check_sync(
        "rtsp://169.254.169.254/", Purpose.STREAM
    )


def test_connect_time_pins_the_checked_address() -> None:
    """At connect the name is judged again and the stream opened at that very address."""
    pinned = policy().pin("rtsp://admin:pw@camera.lan.test:8554/live?x=1", Purpose.STREAM)
    assert pinned == "rtsp://admin:pw@10.0.0.9:8554/live?x=1"
    EVIL["camera.lan.test"] = ["127.0.0.1"]  # DNS changed after the camera was accepted
    try:
        with pytest.raises(NotAllowed) as caught:
            policy().pin("rtsp://admin:pw@camera.lan.test:8554/live", Purpose.STREAM)
    finally:
        EVIL["camera.lan.test"] = ["10.0.0.9"]
    assert isinstance(caught.value, errors.SourceError) and caught.value.reason == "refused"
    assert "pw" not in str(caught.value)


def test_ffmpeg_protocol_whitelist_refuses_local_files(tmp_path: Path) -> None:
    """Even if a file: or concat: URL reached FFmpeg, the whitelist makes it fail."""
    from adapters.rtsp import PROTOCOL_WHITELIST

    clip = tmp_path / "x.txt"
    clip.write_text("hello")
    for url in (f"file:{clip}", f"concat:{clip}|{clip}", f"subfile:,start,0,end,4,:{clip}"):
        with pytest.raises(av.error.FFmpegError):
            av.open(url, options={"protocol_whitelist": PROTOCOL_WHITELIST})


@pytest.fixture
async def api(tmp_path: Path) -> object:
    text = "demo: {enabled: false}\nregions: [{code: '110105', name: c}]"
    async with gateway_client(tmp_path / "data", text) as http:
        yield http


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://2130706433/live",
        "rtsp://[::ffff:127.0.0.1]/live",
        "rtsp://localhost:8080/live",
        "rtsp://169.254.169.254/",
        "file:///etc/passwd",
        "concat:rtsp://10.0.0.1/a|file:///etc/passwd",
    ],
)
async def test_the_api_refuses_with_a_clear_error(api: httpx.AsyncClient, url: str) -> None:
    body = {
        "id": "11010500001320000007",
        "name": "x",
        "class": "A",
        "region": "110105",
        "owner_unit": "t",
        "sector": "police",
        "source": {"main_url": url},
    }
    response = await api.post("/api/v1/cameras", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("destination_not_allowed", "invalid_request")
    body["source"] = {"main_url": "rtsp://10.0.0.5/live"}
    assert (await api.post("/api/v1/cameras", json=body)).status_code == 201
    patch = await api.patch(f"/api/v1/cameras/{body['id']}", json={"source": {"main_url": url}})
    assert patch.status_code == 422, patch.text


async def test_onvif_onboarding_refuses_metadata_addresses(api: httpx.AsyncClient) -> None:
    body = {
        "id": "11010500001320000008",
        "name": "x",
        "class": "A",
        "region": "110105",
        "owner_unit": "t",
        "sector": "police",
        "host": "169.254.169.254",
        "port": 80,
    }
    response = await api.post("/api/v1/onvif/cameras", json=body)
    assert response.status_code == 422 and response.json()["code"] == "destination_not_allowed"
    discover = await api.post("/api/v1/onvif/discover", json={"host": "127.0.0.1"})
    assert discover.status_code == 422 and "loopback" in discover.json()["message"]
