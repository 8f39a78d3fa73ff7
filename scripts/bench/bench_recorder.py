"""Recorder cost: CPU per recorded camera vs ``ffmpeg -c copy -f segment``, and write throughput.

Part 1 — N cameras (default 1, 10, 50) pulled from one RTSP server (GStreamer, shared
media: one pipeline, N sessions). For each N, side by side in one run, alternating:

- hub: a fresh gateway process pulling N always-on cameras with one draining consumer each
  (what the gateway spends anyway, for live view and health);
- recorder: the same plus the recorder writing every camera to fragmented MP4 segments
  (fsync each second): its own cost is recorder − hub;
- anchor: N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60
  -segment_format mp4 out%03d.mp4`` processes, what most NVRs run per camera.

For the recorder it also checks that no packet was lost: every packet the hub delivered to
the recorder is in a segment or was before the first keyframe.

Part 2 — write throughput of one writer thread from memory (no network): the looped clip
muxed as fast as possible, vs ``ffmpeg -stream_loop -c copy -f segment`` of the same clip.

Usage: .venv/bin/python scripts/bench/bench_recorder.py [--counts 1,10,50] [--seconds 20]
       [--rounds 2] [--loops 40]
Needs the test peers installed (scripts/setup test) and ffmpeg. Prints tables with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.peers.rtsp import SHARED_MEDIA, RtspServer, annexb_from_media  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def gateway_worker(
    url: str, count: int, seconds: float, record: bool, options: dict[str, object]
) -> dict[str, float]:
    from functools import partial

    from adapters import open_source
    from gateway.catalog.models import (
        Camera,
        CameraClass,
        RecordingPolicy,
        Sector,
        StreamSource,
    )
    from gateway.hub.hub import Hub
    from gateway.hub.status import State
    from gateway.settings import RecorderSettings
    from recorder.service import Recorder

    data = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    hub = Hub(probe_interval=3600)
    settings = RecorderSettings.model_validate({"low_water": 0, "low_water_percent": 0, **options})
    recorder = Recorder(settings, data, hub)
    await recorder.start()
    streams = []
    readers = []

    async def drain(sub: object) -> None:
        while True:
            await sub.get()  # type: ignore[attr-defined]

    for i in range(count):
        camera_id = f"3401020000132{i:07d}"
        factory = partial(open_source, url)
        stream = await hub.put(camera_id, "main", factory, always_on=True)
        streams.append(stream)
        if record:
            await recorder.apply(
                Camera(
                    id=camera_id,
                    name=f"bench {i}",
                    camera_class=CameraClass.B,
                    region="340102",
                    owner_unit="bench",
                    sector=Sector.POLICE,
                    source=StreamSource(main_url=url),
                    recording=RecordingPolicy.CONTINUOUS,
                )
            )
        else:
            readers.append(asyncio.create_task(drain(stream.subscribe("bench"))))
    deadline = time.monotonic() + 60
    while not all(s.status.state == State.ONLINE for s in streams):
        if time.monotonic() > deadline:
            raise SystemExit("cameras did not all come online in 60 s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # past the connect burst
    packets0 = sum(s.status.packets for s in streams)
    written0 = sum(s.bytes for s in recorder.statuses())
    cpu0 = cpu_seconds()
    await asyncio.sleep(seconds)
    cpu = cpu_seconds() - cpu0
    packets = sum(s.status.packets for s in streams) - packets0
    written = sum(s.bytes for s in recorder.statuses()) - written0
    for task in readers:
        task.cancel()
    # Stopping a recording writes what is queued and closes its segment: final figures.
    finals = [await recorder.remove(s.camera_id) for s in streams]
    statuses = [f for f in finals if f is not None]
    await recorder.close()
    await hub.close()
    shutil.rmtree(data, ignore_errors=True)
    return {
        "cpu": cpu,
        "packets": packets,
        # Lost: dropped by the hub for the recorder, failed writes, or received and unaccounted.
        "lost": sum(s.dropped + s.errors + s.received - s.packets - s.skipped for s in statuses),
        "bytes": written,  # during the measured seconds
    }


def run_gateway(
    url: str, count: int, seconds: float, record: bool, options: dict[str, object]
) -> dict[str, float]:
    argv = [__file__, "--worker", url, str(count), str(seconds), str(int(record))]
    out = subprocess.run(
        [sys.executable, *argv, json.dumps(options)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_ffmpeg(url: str, count: int, seconds: float) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="bench-ffmpeg-"))
    procs = []
    for i in range(count):
        argv = [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
            "-c",
            "copy",
            "-f",
            "segment",
            "-segment_time",
            "60",
            "-segment_format",
            "mp4",
            "-reset_timestamps",
            "1",
            str(folder / f"cam{i}_%03d.mp4"),
        ]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        handles = [psutil.Process(p.pid) for p in procs]
        time.sleep(5)  # connect and probe, as the gateway's warm-up
        if any(p.poll() is not None for p in procs):
            raise SystemExit("an ffmpeg client exited early")
        cpu0 = sum(sum(h.cpu_times()[:2]) for h in handles)
        time.sleep(seconds)
        cpu1 = sum(sum(h.cpu_times()[:2]) for h in handles)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return {"cpu": cpu1 - cpu0}


def throughput_worker(clip: str, loops: int) -> dict[str, float]:
    """One writer thread muxing the clip ``loops`` times from memory, as fast as it can."""
    from dataclasses import replace

    from recorder.index import GapReason
    from recorder.writer import CameraWriter, WriterConfig
    from tests.recorder.media import file_packets

    once = file_packets(Path(clip), 0.0)
    span = once[-1].arrival + 0.04
    packets = []
    for n in range(loops):  # the same camera, sending on: timestamps keep increasing
        packets += [
            replace(
                p,
                pts=p.pts + n * round(span / p.time_base),
                dts=p.dts + n * round(span / p.time_base),
                arrival=p.arrival + n * span,
                seq=p.seq + n * len(once),
            )
            for p in once
        ]
    folder = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    writer = CameraWriter(folder, "34010200001320000001", WriterConfig())
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    for i in range(0, len(packets), 50):  # batches, as the service hands them over
        chunk = packets[i : i + 50]
        writer.write(chunk, chunk[-1].arrival)
    writer.close(GapReason.GATEWAY_DOWN)
    cpu, wall = cpu_seconds() - cpu0, time.monotonic() - wall0
    size = sum(p.stat().st_size for p in folder.rglob("*.mp4"))
    shutil.rmtree(folder, ignore_errors=True)
    return {"cpu": cpu, "wall": wall, "bytes": size, "media_seconds": loops * span}


def run_throughput(clip: Path, loops: int) -> tuple[dict[str, float], dict[str, float]]:
    out = subprocess.run(
        [sys.executable, __file__, "--throughput", str(clip), str(loops)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    ours: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    folder = Path(tempfile.mkdtemp(prefix="bench-ffmpeg-"))
    started = time.monotonic()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-stream_loop",
            str(loops - 1),
            "-i",
            str(clip),
            "-c",
            "copy",
            "-f",
            "segment",
            "-segment_time",
            "60",
            "-segment_format",
            "mp4",
            "-reset_timestamps",
            "1",
            str(folder / "out_%03d.mp4"),
        ],
        check=True,
    )
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - started
    size = sum(p.stat().st_size for p in folder.rglob("*.mp4"))
    shutil.rmtree(folder, ignore_errors=True)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return ours, {"cpu": cpu, "wall": wall, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,50")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2, help="A B C rounds per N, averaged")
    parser.add_argument("--loops", type=int, default=40, help="clip loops for part 2")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recorder setting for the runs, e.g. sync_interval=0 (repeatable)",
    )
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--throughput", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, count, seconds, record, options = args.worker
        result = asyncio.run(
            gateway_worker(url, int(count), float(seconds), record == "1", json.loads(options))
        )
        print(json.dumps(result))
        return
    if args.throughput:
        print(json.dumps(throughput_worker(args.throughput[0], int(args.throughput[1]))))
        return
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed for the anchor: scripts/setup test")
    vtest = SHARED_MEDIA / "vtest.avi"
    if not vtest.is_file():
        raise SystemExit(f"{vtest} is needed (real footage with B-frames and audio)")
    counts = [int(c) for c in args.counts.split(",")]
    options = dict(item.split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"file:{annexb_from_media(vtest, Path(tmp) / 'vtest.h264')}"
        with RtspServer({"/cam": spec}) as server:
            url = server.url("/cam")
            if options:
                print(f"recorder settings: {options}")
            print(
                "part 1: vtest.avi over RTSP (1280x720 25 fps H.264 High, B-frames, ~1.7 Mb/s),"
                f" {args.seconds:g} s measured per run after warm-up; CPU s per camera-s"
            )
            print(
                f"{'N':>3} {'hub':>8} {'hub+rec':>8} {'rec only':>8} {'ffmpeg':>8} "
                f"{'rec/ff':>7} {'(hub+rec)/ff':>12} {'lost':>5} {'MB/s':>6}"
            )
            for n in counts:
                runs: dict[str, list[dict[str, float]]] = {"hub": [], "rec": [], "ff": []}
                for _ in range(args.rounds):  # alternating: the VM's noise hits all alike
                    runs["hub"].append(run_gateway(url, n, args.seconds, False, options))
                    runs["rec"].append(run_gateway(url, n, args.seconds, True, options))
                    runs["ff"].append(run_ffmpeg(url, n, args.seconds))
                cam_s = n * args.seconds * args.rounds
                h, r, f = (sum(x["cpu"] for x in runs[k]) / cam_s for k in ("hub", "rec", "ff"))
                lost = int(sum(x["lost"] for x in runs["rec"]))
                rate = sum(x["bytes"] for x in runs["rec"]) / args.rounds / args.seconds / 1e6
                print(
                    f"{n:>3} {h:>8.4f} {r:>8.4f} {r - h:>8.4f} {f:>8.4f} {(r - h) / f:>7.2f} "
                    f"{r / f:>12.2f} {lost:>5} {rate:>6.2f}"
                )
        ours, theirs = run_throughput(vtest, args.loops)
        media = ours["media_seconds"]
        print(
            f"part 2: {args.loops} loops of vtest.avi ({media:.0f} s of video) muxed from "
            "memory by one writer thread, vs ffmpeg from the file"
        )
        print(f"{'':>10} {'CPU s':>7} {'wall s':>7} {'MB/s':>7} {'x realtime/core':>16}")
        for name, m in (("recorder", ours), ("ffmpeg", theirs)):
            print(
                f"{name:>10} {m['cpu']:>7.2f} {m['wall']:>7.2f} "
                f"{m['bytes'] / m['wall'] / 1e6:>7.1f} {media / m['cpu']:>16.0f}"
            )
        print(f"recorder/ffmpeg CPU: {ours['cpu'] / theirs['cpu']:.2f}")


if __name__ == "__main__":
    main()
