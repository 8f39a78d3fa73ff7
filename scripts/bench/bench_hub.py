"""Hub pull cost: CPU seconds per camera-second and RSS per camera, vs ffmpeg stream copy.

N cameras (default 1, 10, 50) are pulled from one RTSP server (GStreamer, shared media: one
encoder, N sessions). For each N, side by side in one run and alternating:

- gateway: one fresh Python process running the hub with N always-on cameras (demux,
  normalise, GOP cache, one consumer each, as the recorder will be);
- anchor: N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`` processes, the
  cheapest thing that pulls a camera (what most NVRs run per camera, minus the disk).

Usage: .venv/bin/python scripts/bench/bench_hub.py [--counts 1,10,50] [--seconds 20]
Needs the test peers installed (scripts/setup test). Prints a table with ratios.
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


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


async def gateway_worker(url: str, count: int, seconds: float) -> dict[str, float]:
    from adapters import open_source
    from gateway.hub.hub import Hub
    from gateway.hub.status import State

    base_rss = rss_bytes()
    hub = Hub(probe_interval=3600)
    streams = []
    for i in range(count):
        stream = await hub.put(f"cam{i}", "main", lambda: open_source(url), always_on=True)
        streams.append(stream)
    subscribers = [s.subscribe("bench") for s in streams]

    async def drain(sub: object) -> None:
        while True:
            await sub.get()  # type: ignore[attr-defined]

    readers = [asyncio.create_task(drain(s)) for s in subscribers]
    deadline = time.monotonic() + 60
    while not all(s.status.state == State.ONLINE for s in streams):
        if time.monotonic() > deadline:
            raise SystemExit("cameras did not all come online in 60 s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # past the connect burst
    packets0 = sum(s.status.packets for s in streams)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(seconds)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    packets = sum(s.status.packets for s in streams) - packets0
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    rss = rss_bytes()
    drops = sum(s.dropped_total() for s in streams)
    for task in readers:
        task.cancel()
    await hub.close()
    return {"cpu": cpu, "rss": rss, "base_rss": base_rss, "packets": packets, "drops": drops}


def run_gateway(url: str, count: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", url, str(count), str(seconds)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_ffmpeg(url: str, count: int, seconds: float) -> dict[str, float]:
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
        "null",
        "-",
    ]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]
    try:
        handles = [psutil.Process(p.pid) for p in procs]
        time.sleep(5)  # connect and probe, as the gateway's warm-up
        if any(p.poll() is not None for p in procs):
            raise SystemExit("an ffmpeg client exited early")
        cpu0 = sum(sum(h.cpu_times()[:2]) for h in handles)
        time.sleep(seconds)
        cpu1 = sum(sum(h.cpu_times()[:2]) for h in handles)
        rss = sum(h.memory_info().rss for h in handles)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    return {"cpu": cpu1 - cpu0, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,50")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--worker", nargs=3, metavar=("URL", "N", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        url, count, seconds = args.worker[0], int(args.worker[1]), float(args.worker[2])
        print(json.dumps(asyncio.run(gateway_worker(url, count, seconds))))
        return
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed for the anchor: scripts/setup test")
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        vtest = SHARED_MEDIA / "vtest.avi"
        if vtest.is_file():
            spec = f"file:{annexb_from_media(vtest, Path(tmp) / 'vtest.h264')}"
            clip = "vtest.avi, 1280x720 25 fps H.264 High with B-frames, looped"
        else:
            spec = "test,width=1280,height=720,fps=25,bitrate=2000"
            clip = "synthetic 1280x720 25 fps baseline, 2 Mb/s"
        with RtspServer({"/cam": spec}) as server:
            url = server.url("/cam")
            print(f"clip: {clip}; {args.seconds:g} s measured per run, after warm-up")
            print(
                f"{'N':>3} {'gateway cpu/cam-s':>18} {'ffmpeg cpu/cam-s':>17} {'ratio':>6} "
                f"{'gw RSS/cam MB':>14} {'ff RSS/cam MB':>14} {'gw drops':>8}"
            )
            for n in counts:
                gw = run_gateway(url, n, args.seconds)  # A
                ff = run_ffmpeg(url, n, args.seconds)  # B
                cam_seconds = n * args.seconds
                gw_cpu, ff_cpu = gw["cpu"] / cam_seconds, ff["cpu"] / cam_seconds
                gw_rss = (gw["rss"] - gw["base_rss"]) / n / 1e6
                ff_rss = ff["rss"] / n / 1e6
                print(
                    f"{n:>3} {gw_cpu:>18.4f} {ff_cpu:>17.4f} {gw_cpu / ff_cpu:>6.2f} "
                    f"{gw_rss:>14.1f} {ff_rss:>14.1f} {int(gw['drops']):>8}"
                )


if __name__ == "__main__":
    main()
