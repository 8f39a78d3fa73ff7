"""Live analytics: what sampling costs the gateway process, and what the worker spends.

N cameras are pulled from one RTSP server (GStreamer, shared media) by a hub with one
draining consumer per camera (as the recorder is), in a fresh process per run; the runs
differ only in live sampling (analytics/live.py) feeding one real worker process
(analytics/worker.py) through its bounded queue:

- ``off``: no sampling (the anchor);
- ``keyframes``: continuous, keyframes sent, the other packets as arrival times;
- ``fps:2``: continuous, every video packet sent (the worker decodes whole GOPs).

CPU is user + system seconds of the gateway process alone (RUSAGE_SELF: its threads, not
its children) over the measured span, after a warm-up; the worker's CPU is read from its
process. Gateway overhead = (mode - off) / (N x seconds): the share of a core each sampled
camera costs the gateway.

Usage: .venv/bin/python scripts/bench/bench_analytics_live.py [--count 10] [--seconds 20]
Needs the test peers installed (scripts/setup test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.peers.rtsp import SHARED_MEDIA, RtspServer, annexb_from_media  # noqa: E402

MODES = ("off", "keyframes", "fps:2")


async def gateway_run(url: str, count: int, seconds: float, mode: str) -> dict[str, float]:
    from adapters import open_source
    from analytics.config import AnalysisConfig
    from analytics.live import FeedStats, LiveSampler
    from analytics.messages import Job, LiveJob, Result, Shutdown
    from analytics.sampler import Strategy
    from analytics.worker import WorkerConfig
    from analytics.worker import main as worker_main
    from gateway.catalog.models import Camera, CameraClass, Sector, StreamSource
    from gateway.hub.hub import Hub
    from gateway.hub.status import State
    from gateway.settings import LiveSamplingSettings

    hub = Hub(probe_interval=3600)
    streams = [
        await hub.put(f"1101050000132{i:07d}", "main", lambda: open_source(url), always_on=True)
        for i in range(count)
    ]
    subscribers = [s.subscribe("recorder-like") for s in streams]

    async def drain(sub: object) -> None:
        while True:
            await sub.get()  # type: ignore[attr-defined]

    readers = [asyncio.create_task(drain(s)) for s in subscribers]
    worker = None
    sampler = None
    if mode != "off":
        context = multiprocessing.get_context("spawn")
        jobs: multiprocessing.Queue[Job] = context.Queue(256)
        results: multiprocessing.Queue[Result] = context.Queue()
        config = AnalysisConfig(strategy=Strategy.parse(mode))
        with tempfile.TemporaryDirectory() as references:
            settings = WorkerConfig(0, config, config, Path(references), "warning")
        worker = context.Process(target=worker_main, args=(settings, jobs, results), daemon=True)
        worker.start()
        stop = threading.Event()

        def read() -> None:  # the gateway reads results too: counted on its side
            while not stop.is_set():
                try:
                    results.get(timeout=0.5)
                except queue.Empty:
                    pass

        threading.Thread(target=read, daemon=True).start()

        def send(job: LiveJob) -> bool:
            try:
                jobs.put_nowait(job)
            except queue.Full:
                return False
            return True

        live = LiveSamplingSettings(mode="continuous", strategy=mode)
        sampler = LiveSampler(live, hub, send)
        sampler.apply(
            Camera(
                id=s.camera_id,
                name="bench",
                camera_class=CameraClass.B,
                region="110105",
                owner_unit="bench",
                sector=Sector.POLICE,
                source=StreamSource(main_url="rtsp://192.0.2.1/x"),
            )
            for s in streams
        )
    deadline = time.monotonic() + 60
    while not all(s.status.state == State.ONLINE for s in streams):
        if time.monotonic() > deadline:
            raise SystemExit("cameras did not all come online in 60 s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(5)  # past the connect burst and the worker's start

    def counters() -> tuple[float, ...]:
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        work = sum(psutil.Process(worker.pid).cpu_times()[:2]) if worker is not None else 0.0
        feed = sampler.stats if sampler is not None else FeedStats()
        return (cpu.ru_utime + cpu.ru_stime, work, feed.batches, feed.dropped,
                feed.cpu_seconds, feed.sent_bytes / 1e6)  # fmt: skip

    first = counters()
    await asyncio.sleep(seconds)
    names = ("cpu", "worker_cpu", "batches", "dropped", "loop_cpu", "sent_mb")
    out = {name: end - begin for name, begin, end in zip(names, first, counters(), strict=True)}
    if sampler is not None and worker is not None:
        await sampler.close()
        jobs.put(Shutdown())
        worker.join(20)
        stop.set()
    for task in readers:
        task.cancel()
    await hub.close()
    return out


def run(url: str, count: int, seconds: float, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--run", url, str(count), str(seconds), mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode, alternating")
    parser.add_argument("--run", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        url, count, seconds, mode = args.run[0], int(args.run[1]), float(args.run[2]), args.run[3]
        print(json.dumps(asyncio.run(gateway_run(url, count, seconds, mode))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        vtest = SHARED_MEDIA / "vtest.avi"
        if vtest.is_file():
            spec = f"file:{annexb_from_media(vtest, Path(tmp) / 'vtest.h264')}"
            clip = "vtest.avi: 1280x720, 25 fps, H.264 High with B-frames, a keyframe every 5 s"
        else:
            spec = "test,width=1280,height=720,fps=25,bitrate=2000"
            clip = "videotestsrc 1280x720 25 fps, a keyframe every second"
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        with RtspServer({"/cam": spec}) as server:
            for _ in range(args.repeat):
                for mode in MODES:  # alternating: the machine's load drifts
                    runs[mode].append(run(server.url("/cam"), args.count, args.seconds, mode))
    rows = {
        mode: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for mode, results in runs.items()
    }
    print(f"{args.count} cameras of {clip}; {args.seconds:g} s measured per run; median of"
          f" {args.repeat} runs per mode\n")  # fmt: skip
    print("| live sampling | gateway CPU s | overhead per sampled camera | on the event loop"
          " | worker CPU s | per camera | batches | dropped | MB sent |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    camera_seconds = args.count * args.seconds
    for mode, r in rows.items():
        extra = (r["cpu"] - rows["off"]["cpu"]) / camera_seconds
        loop = r["loop_cpu"] / camera_seconds
        work = r["worker_cpu"] / camera_seconds
        print(
            f"| {mode} | {r['cpu']:.2f} | {100 * extra:+.3f} % of a core | {100 * loop:.4f} %"
            f" | {r['worker_cpu']:.2f} | {100 * work:.2f} % | {r['batches']:.0f}"
            f" | {r['dropped']:.0f} | {r['sent_mb']:.1f} |"
        )


if __name__ == "__main__":
    main()
