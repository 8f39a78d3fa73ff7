"""Relay cost: server CPU per WebRTC viewer, and time to first frame, side by side.

One 1080p25 ~4 Mb/s constrained-baseline H.264 clip with a 4 s GOP (vtest.avi scaled, encoded
once) is served, for N = 1, 10, 40 viewers, alternating in one run, by:

- gateway: the real ``sharpeyes serve`` process (WHEP, H.264 passed through, cached-GOP fast
  start), pulling the clip from GStreamer's RTSP server (file loop, no re-encoding);
- janus: Debian's Janus 1.1 streaming plugin (C) with two event loops, fed the same clip as
  RTP by ``ffmpeg -re -c copy``; Janus's ICE will not gather on loopback, so Janus, its feed and its
  viewers run in a private network namespace on 127.0.0.2 (a veth address);
- transcode: aiortc's default path (``MediaPlayer`` decodes once, each viewer's sender encodes
  with libx264), as a small WHEP server in this script; only at the smaller N (it needs about
  a core per 1080p viewer).

Viewers run in a separate process (aiortc; after DTLS they count SRTP packets without
decrypting or decoding, so the viewer process stays light); only the server's CPU is
measured, over ``--seconds`` after a warm-up. Then one more viewer, decoding, measures the time
from its request to its first decoded frame.

Usage (as root, for the namespace): .venv/bin/python scripts/bench/bench_relay.py
    [--counts 1,10,40] [--seconds 10] [--rounds 2] [--targets gateway,janus,transcode]
Needs: Debian janus and ffmpeg, the GStreamer test peers (scripts/setup test), shared media.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import psutil
from fastapi import Request, Response  # module level: FastAPI resolves annotations here

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.process import GatewayProcess  # noqa: E402
from tests.peers.ports import free_port  # noqa: E402
from tests.peers.rtsp import RtspServer, shared_media  # noqa: E402

CAMERA_ID = "11010500001320000001"
CLIP_FPS = 25
CLIP_GOP = 100  # 4 s: a viewer without a fast start waits up to 4 s for an IDR
CLIP_BITRATE = 4_000_000
JANUS_ADDRESS = "127.0.0.2"
JANUS_LIBS = Path("/usr/lib/x86_64-linux-gnu/janus")
# The gateway's admin token: made by main, handed to the gateway and the viewer processes
# in their environment (never on a command line).
TOKEN_ENV = "SHARPEYES_BENCH_TOKEN"
ADMIN_TOKEN = "SHARPEYES_ADMIN_TOKEN"
CONNECT_BATCH = 5  # viewers connecting at once: a herd of DTLS handshakes is not the point


# --- the clip ---------------------------------------------------------------------------


def make_clip(path: Path) -> Path:
    """vtest.avi as 1080p25 constrained-baseline H.264 at ~4 Mb/s, 4 s GOP; cached."""
    if path.is_file():
        return path
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    source = av.open(str(shared_media("vtest.avi")))
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 1920, 1080, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, CLIP_FPS), Fraction(CLIP_FPS)
    encoder.gop_size, encoder.max_b_frames, encoder.bit_rate = CLIP_GOP, 0, CLIP_BITRATE
    encoder.options = {
        "preset": "veryfast",
        "profile": "baseline",
        "x264-params": f"keyint={CLIP_GOP}:min-keyint={CLIP_GOP}:scenecut=0:nal-hrd=cbr:"
        f"vbv-maxrate={CLIP_BITRATE // 1000}:vbv-bufsize={CLIP_BITRATE // 1000}",
    }
    partial = path.with_suffix(".part")
    with partial.open("wb") as out:
        index = 0
        for frame in source.decode(video=0):  # 341 pictures at 25 fps
            scaled = frame.reformat(width=1920, height=1080, format="yuv420p")
            scaled.pts, scaled.time_base = index, encoder.time_base
            index += 1
            for packet in encoder.encode(scaled):
                out.write(bytes(packet))
        for packet in encoder.encode(None):
            out.write(bytes(packet))
    partial.replace(path)
    return path


# --- viewers (a process of their own) ----------------------------------------------------


@dataclass
class Light:
    """A viewer that, once connected, counts SRTP packets and frames (RTP marker bits)."""

    pc: Any
    close_url: str | None = None
    packets: int = 0
    bytes: int = 0
    frames: int = 0

    def go_light(self) -> None:
        for transceiver in self.pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection
            for protocol in connection._protocols:
                protocol.datagram_received = self._counter(protocol.datagram_received)

    def _counter(self, original: Any) -> Any:
        def received(data: bytes, addr: Any) -> None:
            if 128 <= data[0] < 192 and not 64 <= data[1] & 0x7F < 96:  # RTP, not RTCP
                self.packets += 1
                self.bytes += len(data)
                self.frames += data[1] >> 7
            elif not 128 <= data[0] < 192:
                original(data, addr)  # STUN (consent) and DTLS (close) still answered

        return received


async def whep_connect(http: Any, url: str, decode: bool) -> tuple[Any, str, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: track.done() or track.set_result(t))
    await pc.setLocalDescription(await pc.createOffer())
    response = await http.post(
        url, content=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}
    )
    if response.status_code != 201:
        raise RuntimeError(f"WHEP {response.status_code}: {response.text}")
    await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
    location = str(response.url.join(response.headers["location"]))
    return pc, location, track


async def janus_connect(http: Any, url: str, decode: bool) -> tuple[Any, str, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    def tx() -> str:
        return secrets.token_hex(6)

    session = (await http.post(url, json={"janus": "create", "transaction": tx()})).json()
    session_url = f"{url}/{session['data']['id']}"
    handle = (
        await http.post(
            session_url,
            json={"janus": "attach", "plugin": "janus.plugin.streaming", "transaction": tx()},
        )
    ).json()
    handle_url = f"{session_url}/{handle['data']['id']}"
    await http.post(
        handle_url,
        json={"janus": "message", "transaction": tx(), "body": {"request": "watch", "id": 1}},
    )
    offer = None
    while offer is None:  # Janus's long poll: the streaming plugin's offer comes as an event
        offer = (await http.get(session_url, timeout=30)).json().get("jsep")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: track.done() or track.set_result(t))
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await http.post(
        handle_url,
        json={
            "janus": "message",
            "transaction": tx(),
            "body": {"request": "start"},
            "jsep": {"type": "answer", "sdp": pc.localDescription.sdp},
        },
    )
    return pc, session_url, track


async def viewers_main(args: argparse.Namespace) -> None:
    import httpx
    from aioice import ice as aioice_ice

    aioice_ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.address]  # type: ignore
    connect = janus_connect if args.signal == "janus" else whep_connect

    def say(**event: Any) -> None:
        print(json.dumps(event), flush=True)

    # The gateway's bootstrap admin (see main); the other servers ignore the header.
    auth = {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"} if TOKEN_ENV in os.environ else {}
    async with httpx.AsyncClient(timeout=30, headers=auth) as http:
        viewers: list[Light] = []
        for start in range(0, args.count, CONNECT_BATCH):
            batch = await asyncio.gather(
                *(
                    connect(http, args.url, False)
                    for _ in range(min(CONNECT_BATCH, args.count - start))
                )
            )
            for pc, close_url, _ in batch:
                viewers.append(Light(pc, close_url))
        deadline = time.monotonic() + 30
        while any(v.pc.connectionState != "connected" for v in viewers):
            if time.monotonic() > deadline:
                raise SystemExit("viewers did not all connect within 30 s")
            await asyncio.sleep(0.1)
        for viewer in viewers:
            viewer.go_light()
        await asyncio.sleep(args.warmup)

        def totals() -> dict[str, int]:
            return {
                "packets": sum(v.packets for v in viewers),
                "bytes": sum(v.bytes for v in viewers),
                "frames": sum(v.frames for v in viewers),
                "receiving": sum(1 for v in viewers if v.packets),
            }

        say(event="start", **totals())
        await asyncio.sleep(args.seconds)
        say(event="stop", **totals())

        # Time to first frame: one more viewer that decodes.
        asked = time.monotonic()
        pc, close_url, track = await connect(http, args.url, True)
        answered = time.monotonic()
        try:
            await asyncio.wait_for((await track).recv(), 15)
            first = time.monotonic()
            say(event="ttff", request=first - asked, answer=first - answered)
        except TimeoutError:
            say(event="ttff", request=None, answer=None)
        await pc.close()
        for viewer in [*viewers, Light(pc, close_url)]:
            await viewer.pc.close()
            with contextlib.suppress(httpx.HTTPError):
                if args.signal == "janus":
                    await http.post(viewer.close_url, json={"janus": "destroy", "transaction": "x"})
                else:
                    await http.delete(viewer.close_url)


# --- the decode-and-encode server (aiortc's default path) --------------------------------


def transcode_main(args: argparse.Namespace) -> None:
    import uvicorn
    from aioice import ice as aioice_ice
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer, MediaRelay
    from fastapi import FastAPI

    aioice_ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # type: ignore
    app = FastAPI()
    relay = MediaRelay()
    player: list[Any] = []  # opened on the loop, at the first viewer
    peers: dict[str, Any] = {}
    h264 = [
        c
        for c in RTCRtpSender.getCapabilities("video").codecs
        if c.name == "H264" and c.parameters.get("packetization-mode") == "1"
    ]

    @app.post("/whep")
    async def whep(request: Request) -> Response:
        if not player:
            player.append(
                MediaPlayer(args.source, format="rtsp", options={"rtsp_transport": "tcp"})
            )
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = pc.addTransceiver(
            relay.subscribe(player[0].video, buffered=False), direction="sendonly"
        )
        transceiver.setCodecPreferences(h264)
        await pc.setRemoteDescription(
            RTCSessionDescription((await request.body()).decode(), "offer")
        )
        await pc.setLocalDescription(await pc.createAnswer())
        key = secrets.token_hex(8)
        peers[key] = pc
        return Response(
            pc.localDescription.sdp,
            201,
            media_type="application/sdp",
            headers={"Location": f"/whep/{key}"},
        )

    @app.delete("/whep/{key}")
    async def delete(key: str) -> Response:
        pc = peers.pop(key, None)
        if pc is not None:
            await pc.close()
        return Response(status_code=200)

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


# --- servers under test ------------------------------------------------------------------


@dataclass
class Target:
    name: str
    pid: int
    signal: str  # whep | janus
    url: str
    address: str  # the viewers' ICE address
    netns: str | None = None
    results: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def cpu(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@contextlib.contextmanager
def gateway_target(rtsp_url: str, workdir: Path) -> Iterator[Target]:
    config = f"""
log_level: warning
hub: {{idle_stop_after: 3600, probe_interval: 3600}}
relay: {{max_viewers: 500, max_viewers_per_camera: 500, ice: {{host_addresses: ["127.0.0.1"]}}}}
security: {{allow_loopback_cameras: true, live_sessions_per_principal: 500,
  requests_per_second: 1000, request_burst: 1000}}
demo: {{enabled: false}}
regions: [{{code: "110105", name: "bench"}}]
cameras:
  - {{id: "{CAMERA_ID}", name: "bench", class: A, region: "110105", owner_unit: "bench",
     sector: police, source: {{main_url: "{rtsp_url}"}}}}
"""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {ADMIN_TOKEN: os.environ[TOKEN_ENV]}
    with GatewayProcess(workdir, config, env=env) as gateway:
        assert gateway.proc is not None
        yield Target(
            "gateway",
            gateway.proc.pid,
            "whep",
            f"{gateway.base_url}/api/v1/cameras/{CAMERA_ID}/whep",
            "127.0.0.1",
        )


@contextlib.contextmanager
def transcode_target(rtsp_url: str) -> Iterator[Target]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "transcode-server", "--port", str(port), "--source", rtsp_url],
        cwd=ROOT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/docs", proc)
        yield Target("transcode", proc.pid, "whep", f"http://127.0.0.1:{port}/whep", "127.0.0.1")
    finally:
        _stop(proc)


@contextlib.contextmanager
def netns() -> Iterator[str]:
    name = f"sharpeyes-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in (
            "ip link set lo up",
            "ip link add veth0 type veth peer name veth1",
            "ip link set veth0 up",
            "ip link set veth1 up",
            f"ip addr add {JANUS_ADDRESS}/32 dev veth0",
        ):
            subprocess.run(["ip", "netns", "exec", name, *command.split()], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@contextlib.contextmanager
def janus_target(clip: Path, ns: str, workdir: Path) -> Iterator[Target]:
    workdir.mkdir(parents=True, exist_ok=True)
    disabled = ",".join(
        p.name for p in (JANUS_LIBS / "plugins").glob("*.so") if p.name != "libjanus_streaming.so"
    )
    transports = ",".join(
        p.name for p in (JANUS_LIBS / "transports").glob("*.so") if p.name != "libjanus_http.so"
    )
    rtp_port, http_port = 5004, 8088  # inside the private namespace: nothing else is there
    # event_loops: a fixed pool of loop threads, one per core, as a tuned deployment runs it
    # (Janus's default, one thread per viewer, costs it about twice as much at 40 viewers).
    (workdir / "janus.jcfg").write_text(f"""
general: {{ configs_folder = "{workdir}" plugins_folder = "{JANUS_LIBS}/plugins"
  transports_folder = "{JANUS_LIBS}/transports" events_folder = "{JANUS_LIBS}/events"
  loggers_folder = "{JANUS_LIBS}/loggers" debug_level = 3 session_timeout = 300 event_loops = 2 }}
nat: {{ ice_enforce_list = "veth0" }}
plugins: {{ disable = "{disabled}" }}
transports: {{ disable = "{transports}" }}
events: {{ broadcast = false }}
""")
    (workdir / "janus.transport.http.jcfg").write_text(f"""
general: {{ json = "compact" base_path = "/janus" http = true port = {http_port}
  ip = "{JANUS_ADDRESS}" https = false }}
admin: {{ admin_http = false }}
""")
    (workdir / "janus.plugin.streaming.jcfg").write_text(f"""
bench: {{ type = "rtp" id = 1 description = "bench" audio = false video = true
  videoport = {rtp_port} videopt = 96 videocodec = "h264"
  videofmtp = "profile-level-id=42e01f;packetization-mode=1" }}
""")
    # ffmpeg cannot loop a raw .h264 (seeking it fails with EPERM at the first loop): feed
    # the same bytes from a Matroska copy.
    looped = clip.with_suffix(".mkv")
    if not looped.is_file():
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-framerate",
                str(CLIP_FPS),
                "-i",
                str(clip),
                "-c",
                "copy",
                str(looped),
            ],
            check=True,
        )
    exec_ns = ["ip", "netns", "exec", ns]
    log = (workdir / "janus.log").open("wb")
    janus = subprocess.Popen(
        [*exec_ns, "janus", "-F", str(workdir), "-C", str(workdir / "janus.jcfg")],
        stdout=log,
        stderr=log,
    )
    feed = subprocess.Popen(
        [
            *exec_ns,
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            str(looped),
            "-c",
            "copy",
            "-an",
            "-f",
            "rtp",
            f"rtp://127.0.0.1:{rtp_port}?pkt_size=1200",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"http://{JANUS_ADDRESS}:{http_port}/janus"
        _wait_http(url + "/info", janus, netns_name=ns)
        yield Target("janus", janus.pid, "janus", url, JANUS_ADDRESS, netns=ns)
    finally:
        _stop(feed)
        _stop(janus)
        log.close()


def _wait_http(url: str, proc: subprocess.Popen[Any], netns_name: str | None = None) -> None:
    probe = ["curl", "-sf", "-o", "/dev/null", url]
    if netns_name:
        probe = ["ip", "netns", "exec", netns_name, *probe]
    for _ in range(150):
        if proc.poll() is not None:
            raise SystemExit(f"{probe[-1]}: the server exited with {proc.returncode}")
        if subprocess.run(probe, check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_viewers(target: Target, count: int, args: argparse.Namespace) -> dict[str, Any]:
    argv = [
        sys.executable,
        __file__,
        "viewers",
        "--signal",
        target.signal,
        "--url",
        target.url,
        "--count",
        str(count),
        "--address",
        target.address,
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
    ]
    if target.netns:
        argv = ["ip", "netns", "exec", target.netns, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    out: dict[str, Any] = {}
    cpu0 = t0 = 0.0
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "start":
            cpu0, t0, out["start"] = target.cpu(), time.monotonic(), event
        elif event["event"] == "stop":
            out["cores"] = (target.cpu() - cpu0) / (time.monotonic() - t0)
            out["stop"] = event
        elif event["event"] == "ttff":
            out["ttff"] = event["request"]
    if proc.wait(60) != 0 or "cores" not in out:
        raise SystemExit(f"{target.name} with {count} viewers failed")
    start, stop = out["start"], out["stop"]
    seconds = args.seconds
    out["fps"] = (stop["frames"] - start["frames"]) / seconds / count
    out["mbps"] = 8 * (stop["bytes"] - start["bytes"]) / seconds / count / 1e6
    out["receiving"] = stop["receiving"]
    return out


def idle_cores(target: Target, seconds: float) -> float:
    cpu0, t0 = target.cpu(), time.monotonic()
    time.sleep(seconds)
    return (target.cpu() - cpu0) / (time.monotonic() - t0)


def report(targets: list[Target], counts: list[int], idle: dict[str, float]) -> None:
    def med(target: Target, n: int, key: str) -> float | None:
        values = [r[key] for r in target.results.get(n, []) if r.get(key) is not None]
        return statistics.median(values) if values else None

    print("\nmedian over rounds; per viewer = (cores at N - cores at 0) / N")
    header = (
        f"{'N':>3} {'target':>10} {'cores':>6} {'per viewer':>10} {'fps/viewer':>10} "
        f"{'Mb/s/viewer':>11} {'first frame s':>13}"
    )
    print(header)
    for n in counts:
        for target in targets:
            cores = med(target, n, "cores")
            if cores is None:
                print(f"{n:>3} {target.name:>10} {'n/a':>6}")
                continue
            per = (cores - idle[target.name]) / n
            ttff = med(target, n, "ttff")
            print(
                f"{n:>3} {target.name:>10} {cores:>6.3f} {per:>10.4f} "
                f"{med(target, n, 'fps'):>10.1f} {med(target, n, 'mbps'):>11.2f} "
                f"{(f'{ttff:.3f}' if ttff is not None else 'none'):>13}"
            )
    names = [t.name for t in targets]
    if "gateway" in names:
        gw = targets[names.index("gateway")]
        for other in targets:
            if other is gw:
                continue
            ratios = []
            for n in counts:
                a, b = med(gw, n, "cores"), med(other, n, "cores")
                if a is not None and b is not None:
                    per_a = (a - idle["gateway"]) / n
                    per_b = (b - idle[other.name]) / n
                    ttff_a, ttff_b = med(gw, n, "ttff"), med(other, n, "ttff")
                    ttff = (
                        f", first frame {ttff_b / ttff_a:.1f}x faster" if ttff_a and ttff_b else ""
                    )
                    ratios.append(
                        f"N={n}: CPU per viewer gateway/{other.name} = {per_a / per_b:.2f}{ttff}"
                    )
            for line in ratios:
                print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    viewers = sub.add_parser("viewers", help=argparse.SUPPRESS)
    viewers.add_argument("--signal", choices=["whep", "janus"], required=True)
    viewers.add_argument("--url", required=True)
    viewers.add_argument("--count", type=int, required=True)
    viewers.add_argument("--address", default="127.0.0.1")
    viewers.add_argument("--seconds", type=float, default=10)
    viewers.add_argument("--warmup", type=float, default=3)
    transcode = sub.add_parser("transcode-server", help=argparse.SUPPRESS)
    transcode.add_argument("--port", type=int, required=True)
    transcode.add_argument("--source", required=True)
    parser.add_argument("--counts", default="1,10,40")
    parser.add_argument("--transcode-counts", default="1,10", help="decode-and-encode: fewer")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--targets", default="gateway,janus,transcode")
    parser.add_argument(
        "--clip", type=Path, default=ROOT / "artifacts" / "bench" / "clip-1080p.h264"
    )
    args = parser.parse_args()
    if args.command == "viewers":
        asyncio.run(viewers_main(args))
        return
    if args.command == "transcode-server":
        transcode_main(args)
        return

    os.environ[TOKEN_ENV] = secrets.token_urlsafe(32)
    names = args.targets.split(",")
    if "janus" in names and (shutil.which("janus") is None or os.geteuid() != 0):
        raise SystemExit("janus needs Debian's janus package and root (ip netns)")
    counts = [int(c) for c in args.counts.split(",")]
    transcode_counts = {int(c) for c in args.transcode_counts.split(",")}
    clip = make_clip(args.clip)
    print(
        f"clip: {clip} ({clip.stat().st_size * 8 / 1e6:.1f} Mbit), 1920x1080 {CLIP_FPS} fps, "
        f"GOP {CLIP_GOP / CLIP_FPS:g} s; {args.seconds:g} s measured per run after "
        f"{args.warmup:g} s warm-up; {args.rounds} rounds, alternating"
    )
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        server = stack.enter_context(RtspServer({"/clip": f"file:{clip}"}))
        rtsp_url = server.url("/clip")
        targets: list[Target] = []
        if "gateway" in names:
            targets.append(stack.enter_context(gateway_target(rtsp_url, Path(tmp) / "gw")))
        if "janus" in names:
            ns = stack.enter_context(netns())
            targets.append(stack.enter_context(janus_target(clip, ns, Path(tmp) / "janus")))
        if "transcode" in names:
            targets.append(stack.enter_context(transcode_target(rtsp_url)))
        # Each server's ingest alone (0 viewers), after one viewer has started its pull.
        idle: dict[str, float] = {}
        for target in targets:
            run_viewers(target, 1, args)
            idle[target.name] = idle_cores(target, args.seconds)
            print(f"{target.name}: {idle[target.name]:.3f} cores with no viewer")
        for round_ in range(args.rounds):
            for n in counts:
                for target in targets:
                    if target.name == "transcode" and n not in transcode_counts:
                        continue
                    result = run_viewers(target, n, args)
                    target.results[n].append(result)
                    print(
                        f"round {round_ + 1} N={n:>2} {target.name:>9}: "
                        f"{result['cores']:.3f} cores, {result['fps']:.1f} fps/viewer, "
                        f"{result['receiving']}/{n} receiving, first frame "
                        f"{result.get('ttff')}",
                        flush=True,
                    )
                    time.sleep(2)  # sessions torn down before the next run
        report(targets, counts, idle)


if __name__ == "__main__":
    main()
