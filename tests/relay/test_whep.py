"""WHEP against the gateway app: aiortc viewers on loopback, real cameras (GStreamer RTSP
server, the synthetic demo encoder), no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender

from gateway.hub.stream import CameraStream
from tests.inprocess import gateway_of
from tests.peers.ports import free_port
from tests.peers.rtsp import RtspServer
from tests.relay.conftest import DEMO_ID, RTSP_ID, GatewayFactory, demo, rtsp_camera
from tests.relay.whep_client import DecoderTap, eventually, nal_digest, open_viewer

# A camera with a 4 s GOP: without the cached GOP a new viewer would wait up to 4 s.
LONG_GOP = "demo://longgop?width=320&height=240&fps=25&gop=100"


@contextlib.asynccontextmanager
async def hub_tap(stream: CameraStream) -> AsyncIterator[set[str]]:
    """Digests of the video packets the hub hands out, while the block runs."""
    digests: set[str] = set()
    subscriber = stream.subscribe("test tap")

    async def read() -> None:
        async for packet in subscriber:
            if packet.kind == "video":
                digests.add(nal_digest(packet.data))

    task = asyncio.create_task(read())
    try:
        yield digests
    finally:
        subscriber.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def error_of(request: Callable[[], object]) -> httpx.Response:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await request()  # type: ignore[misc]
    return caught.value.response


async def test_rtsp_camera_passed_through(
    make_gateway: GatewayFactory, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    """Decoded at the camera's size and rate; every access unit is the camera's own bytes."""
    server = make_rtsp_server({"/cam": "test,width=640,height=360,fps=25,gop=25"})
    async with make_gateway(rtsp_camera(server.url("/cam"))) as http:
        stream = gateway_of(http).stream(RTSP_ID)
        with DecoderTap().installed() as tap:
            async with hub_tap(stream) as sent:
                viewer = await open_viewer(http, RTSP_ID)
                await viewer.wait_frames(25, timeout=15)
                steady_from = time.monotonic()
                await asyncio.sleep(3)
                fps = viewer.fps(steady_from)
                await viewer.close(http)
        assert {(f.width, f.height) for f in viewer.frames} == {(640, 360)}
        assert 22 <= fps <= 28, f"decoded {fps:.1f} fps from a 25 fps camera"
        received = list(tap.digests)
        assert len(received) >= 75
        foreign = [d for d in received if d not in sent]
        assert not foreign, f"{len(foreign)} of {len(received)} access units differ from the hub's"
        assert gateway_of(http).relay.stats()["sessions"] == 0


async def test_fast_start_with_a_4s_gop(make_gateway: GatewayFactory) -> None:
    """A viewer joining 2.5 s into a 4 s GOP sees a picture at once and catches up."""
    async with make_gateway(demo(LONG_GOP)) as http:
        first = await open_viewer(http, DEMO_ID)
        await first.wait_frames(1, timeout=10)
        await asyncio.sleep(2.5)  # the camera's next IDR is 1.5 s away
        joined = await open_viewer(http, DEMO_ID)
        await joined.wait_frames(1, timeout=4)
        delay = joined.first_frame_delay
        assert delay is not None and delay < 1.0, f"first frame {delay:.3f} s after the answer"
        await asyncio.sleep(2)
        # Caught up: the replayed GOP (~60 frames) and the live frames since are all decoded,
        # and from here it decodes in step with the viewer who was there first.
        assert len(joined.frames) >= 60 + 40
        steady = time.monotonic()
        await asyncio.sleep(1.5)
        assert abs(joined.fps(steady) - first.fps(steady)) < 4
        for viewer in (first, joined):
            await viewer.close(http)
        print(f"time to first frame with a 4 s GOP: {delay * 1000:.0f} ms")


async def test_bad_offers_are_refused_clearly(make_gateway: GatewayFactory) -> None:
    async with make_gateway() as http:
        url = f"/api/v1/cameras/{DEMO_ID}/whep"
        sdp = {"Content-Type": "application/sdp"}
        response = await http.post(url, content="hello", headers=sdp)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_sdp"
        response = await http.post(url, content="v=0\r\n", headers={"Content-Type": "text/plain"})
        assert response.status_code == 415
        assert "application/sdp" in response.json()["message"]

        vp8_only = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = vp8_only.addTransceiver("video", direction="recvonly")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "VP8"]
        )
        await vp8_only.setLocalDescription(await vp8_only.createOffer())
        response = await http.post(url, content=vp8_only.localDescription.sdp, headers=sdp)
        await vp8_only.close()
        assert response.status_code == 422
        assert response.json()["code"] == "offer_not_acceptable"
        assert "H.264" in response.json()["message"]

        unknown = await error_of(lambda: open_viewer(http, "11010500001320009999"))
        assert unknown.status_code == 404
        no_sub = await error_of(lambda: open_viewer(http, DEMO_ID, stream="sub"))
        assert no_sub.status_code == 404
        assert (await http.delete(f"{url}/nosuchsession")).status_code == 404

        # The gateway still serves, and the refused offers left nothing behind.
        viewer = await open_viewer(http, DEMO_ID)
        await viewer.wait_frames(5, timeout=10)
        await viewer.close(http)
        stats = gateway_of(http).relay.stats()
        assert stats["sessions"] == 0
        assert stats["refused_total"] == {"invalid_sdp": 1, "offer_not_acceptable": 1}
        assert gateway_of(http).stream(DEMO_ID).subscriber_count == 0


async def test_unplayable_cameras_name_the_fix(
    make_gateway: GatewayFactory, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    server = make_rtsp_server({"/hevc": "test,hevc", "/bframes": "test,bframes", "/sub": "test"})
    config = rtsp_camera(server.url("/hevc"), sub_url=server.url("/sub"))
    async with make_gateway(config) as http:
        refused = await error_of(lambda: open_viewer(http, RTSP_ID))
        assert refused.status_code == 422
        body = refused.json()
        assert body["code"] == "stream_not_playable"
        assert "HEVC" in body["message"] and "?stream=sub" in body["message"]
        viewer = await open_viewer(http, RTSP_ID, stream="sub")  # the fix works
        await viewer.wait_frames(5, timeout=15)
        await viewer.close(http)
    async with make_gateway(rtsp_camera(server.url("/bframes"))) as http:
        refused = await error_of(lambda: open_viewer(http, RTSP_ID))
        assert refused.status_code == 422
        assert "B-frames" in refused.json()["message"]
        assert "baseline" in refused.json()["message"]
        assert gateway_of(http).relay.stats()["sessions"] == 0


async def test_viewer_limits(
    make_gateway: GatewayFactory, make_rtsp_server: Callable[..., RtspServer]
) -> None:
    """Past a camera's or the node's limit: 503 naming the limit; the others keep playing."""
    server = make_rtsp_server({"/cam": "test,width=320,height=240"})
    other_id = RTSP_ID[:-1] + "3"
    config = (
        rtsp_camera(server.url("/cam"))
        + f"""
  - {{id: "{other_id}", name: "second", class: B, region: "110105", owner_unit: "test",
     sector: police, source: {{main_url: '{server.url("/cam")}'}}}}
relay: {{max_viewers_per_camera: 1, max_viewers: 2, ice: {{host_addresses: ["127.0.0.1"]}}}}
"""
    )
    async with make_gateway(config) as http:
        first = await open_viewer(http, DEMO_ID)
        busy = await error_of(lambda: open_viewer(http, DEMO_ID))
        assert busy.status_code == 503
        assert busy.json()["code"] == "overloaded"
        assert f"camera {DEMO_ID} has its maximum of 1" in busy.json()["message"]
        second = await open_viewer(http, RTSP_ID)  # another camera is still served
        full = await error_of(lambda: open_viewer(http, other_id))
        assert full.status_code == 503
        assert "this gateway serves its maximum of 2" in full.json()["message"]
        await first.wait_frames(10, timeout=10)
        await second.wait_frames(10, timeout=15)
        counts = len(first.frames), len(second.frames)
        await asyncio.sleep(1)
        assert len(first.frames) > counts[0] + 10 and len(second.frames) > counts[1] + 10
        await first.close(http)
        third = await open_viewer(http, other_id)  # a freed place is taken at once
        await third.wait_frames(5, timeout=15)
        for viewer in (second, third):
            await viewer.close(http)
        stats = gateway_of(http).relay.stats()
        assert stats["sessions"] == 0 and stats["refused_total"] == {"overloaded": 2}


async def test_dead_sessions_are_reaped(make_gateway: GatewayFactory) -> None:
    async with make_gateway(
        "relay: {connect_timeout: 1, ice: {host_addresses: ['127.0.0.1']}}\n"
    ) as http:
        relay = gateway_of(http).relay
        stream = gateway_of(http).stream(DEMO_ID)
        gone = await open_viewer(http, DEMO_ID)
        await gone.wait_frames(3, timeout=10)
        await gone.pc.close()  # the viewer vanishes without DELETE (DTLS close_notify)
        # A viewer that posts an offer and never connects.
        silent = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        silent.addTransceiver("video", direction="recvonly")
        await silent.setLocalDescription(await silent.createOffer())
        response = await http.post(
            f"/api/v1/cameras/{DEMO_ID}/whep",
            content=silent.localDescription.sdp,
            headers={"Content-Type": "application/sdp"},
        )
        assert response.status_code == 201
        await silent.close()
        assert await eventually(lambda: not relay.stats()["sessions"], timeout=10)
        ended = relay.stats()["ended_total"]
        assert ended == {"client_closed": 1, "connect_timeout": 1}, ended
        assert stream.subscriber_count == 0

        # A camera removed under its viewers ends their sessions.
        viewer = await open_viewer(http, DEMO_ID)
        await viewer.wait_frames(3, timeout=10)
        await gateway_of(http).hub.remove(DEMO_ID)
        assert await eventually(lambda: not relay.stats()["sessions"], timeout=5)
        assert relay.stats()["ended_total"].get("stream_ended") == 1  # type: ignore[union-attr]
        await viewer.close()


async def test_ice_port_range(make_gateway: GatewayFactory) -> None:
    """The gateway's candidates use the configured UDP ports (a firewall's pinhole)."""
    config = "relay: {ice: {host_addresses: ['127.0.0.1'], port_min: 41000, port_max: 41009}}\n"
    async with make_gateway(config) as http:
        viewers = [await open_viewer(http, DEMO_ID) for _ in range(3)]
        for viewer in viewers:
            await viewer.wait_frames(3, timeout=10)
            answer = viewer.pc.remoteDescription.sdp
            ports = {
                int(line.split()[5])
                for line in answer.splitlines()
                if line.startswith("a=candidate:")
            }
            assert ports and all(41000 <= p <= 41009 for p in ports), ports
        for viewer in viewers:
            await viewer.close(http)


async def test_lost_packet_is_retransmitted_as_rtx(make_gateway: GatewayFactory) -> None:
    """A NACK is answered from the lean sender's history, wrapped as RFC 4588 RTX."""
    async with make_gateway() as http:
        viewer = await open_viewer(http, DEMO_ID)
        receiver = viewer.pc.getReceivers()[0]
        seen: list[tuple[int, int, bytes]] = []  # payload type, sequence, payload
        handle = receiver._handle_rtp_packet

        async def record(packet: Any, arrival_time_ms: int) -> None:
            seen.append((packet.payload_type, packet.sequence_number, packet.payload))
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = record  # type: ignore[method-assign]
        await viewer.wait_frames(len(viewer.frames) + 5, timeout=10)
        media_type, sequence, payload = seen[-1]
        session = gateway_of(http).relay.sessions(DEMO_ID)[0]
        assert session.pc is not None
        await session.pc.getSenders()[0]._retransmit(sequence)
        wrapped = struct.pack("!H", sequence) + payload
        assert await eventually(
            lambda: any(t != media_type and p == wrapped for t, _, p in seen), timeout=5
        )
        await viewer.close(http)


async def test_offline_camera_is_refused_at_once(make_gateway: GatewayFactory) -> None:
    """A camera that refuses connections: 503 with its reason, as soon as the pull fails."""
    closed = free_port()
    async with make_gateway(rtsp_camera(f"rtsp://127.0.0.1:{closed}/stream")) as http:
        asked = time.monotonic()
        refused = await error_of(lambda: open_viewer(http, RTSP_ID))
        assert time.monotonic() - asked < 3
        assert refused.status_code == 503
        assert refused.json()["code"] == "camera_offline"
        assert "refused" in refused.json()["message"]
        assert gateway_of(http).relay.stats()["sessions"] == 0
