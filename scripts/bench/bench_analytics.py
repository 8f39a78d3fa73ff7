"""Benchmark of the analytics worker's decoding strategy, in one run.

1. Throughput: a 30 s 1080p H.264 clip (the shared vtest footage scaled up, encoded like a
   camera stream: 25 fps, a keyframe every 2 s, no B-frames) is diagnosed with each
   sampling strategy and with a naive loop that decodes every frame with
   ``cv2.VideoCapture`` and runs the same detectors on each. Reported as seconds of video
   per CPU-second (user + system time of the whole process, all threads), i.e. "x real
   time per core".
2. Detection: the labelled clips of the test suite (each fault from 3.5 s on), analysed
   with every strategy: was the fault found, with what onset error, and was anything
   else reported.

Usage: .venv/bin/python scripts/bench/bench_analytics.py [--keep DIR]
Needs the ffmpeg CLI (to make the clips) and ../shared/media/vtest.avi.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "analytics"))  # the labelled clip recipes

from analytics_clips import ONSET, VTEST, VTEST_RECIPES, ffmpeg, make_base, make_fault  # noqa: E402

from analytics.analyze import analyze_file, analyze_source  # noqa: E402
from analytics.config import AnalysisConfig  # noqa: E402
from analytics.events import Event  # noqa: E402
from analytics.sampler import Picture, Sample, Strategy  # noqa: E402

STRATEGIES = ["auto", "keyframes", "fps:2", "all"]
LENGTH = 30.0


def make_1080p(out: Path) -> Path:
    once = out.with_name("vtest-1080p-once.mp4")
    ffmpeg("-i", str(VTEST), "-an",
           "-vf", "scale=1920:1080", "-c:v", "libx264", "-preset", "superfast", "-crf", "23",
           "-g", "50", "-bf", "0", "-pix_fmt", "yuv420p", str(once))  # fmt: skip
    # Looped by copying: re-encoding 30 s of 1080p would take longer than the benchmark.
    ffmpeg("-stream_loop", "2", "-i", str(once), "-c", "copy", "-t", str(LENGTH), str(out))
    return out


def naive_samples(path: Path, width: int) -> Iterator[Sample]:
    """Every frame decoded by OpenCV, scaled like the sampler scales its pictures."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            height = round(image.shape[0] * width / image.shape[1] / 2) * 2
            yield Picture(t, cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    finally:
        capture.release()


def cpu_seconds(run: Callable[[], list[Event]]) -> tuple[float, list[Event]]:
    start = time.process_time()
    events = run()
    return time.process_time() - start, events


def throughput(clip: Path) -> None:
    with av.open(str(clip)) as container:
        length = float(container.duration or 0) / av.time_base
    print(f"## Throughput: {clip.name}, {length:.1f} s of 1920x1080 H.264 (GOP 2 s, no B)\n")
    print("| method | CPU s | x real time per core | events |")
    print("| --- | ---: | ---: | --- |")
    results: dict[str, float] = {}
    config = AnalysisConfig()
    for name in STRATEGIES:
        strategy_config = AnalysisConfig(strategy=Strategy.parse(name))
        cpu, events = cpu_seconds(lambda c=strategy_config: list(analyze_file(clip, c)))
        results[name] = cpu
        kinds = ", ".join(sorted({str(e.type) for e in events}))
        print(f"| sharpeyes `{name}` | {cpu:.2f} | {length / cpu:.0f} | {kinds} |")
    cpu, events = cpu_seconds(
        lambda: list(analyze_source(naive_samples(clip, config.width), config))
    )
    kinds = ", ".join(sorted({str(e.type) for e in events}))
    print(f"| naive cv2.VideoCapture, every frame | {cpu:.2f} | {length / cpu:.1f} | {kinds} |")
    print(f"\nratio auto / naive: **{cpu / results['auto']:.0f}x** less CPU per second of video\n")


def detection(work: Path) -> None:
    base = make_base(work / "vtest.mp4")
    print("## Detection: labelled clips (640x360, 8 s, GOP 1 s, fault from 3.5 s)\n")
    print("onset error = event start - 3.5 s; `extra` lists any other fault reported.\n")
    print("| fault | " + " | ".join(STRATEGIES) + " |")
    print("| --- |" + " --- |" * len(STRATEGIES))
    cpu_total = dict.fromkeys(STRATEGIES, 0.0)
    for recipe in VTEST_RECIPES:
        clip = make_fault(base, recipe, work)
        cells = []
        for name in STRATEGIES:
            config = AnalysisConfig(strategy=Strategy.parse(name))
            cpu, events = cpu_seconds(lambda c=config, f=clip: list(analyze_file(f, c)))
            cpu_total[name] += cpu
            found = [e for e in events if e.type == recipe.name]
            extra = sorted({str(e.type) for e in events if e.type.is_fault} - {recipe.name})
            cell = f"yes, {found[0].start - ONSET:+.2f} s" if found else "**missed**"
            cells.append(cell + (f", extra: {', '.join(extra)}" if extra else ""))
        print(f"| {recipe.name} | " + " | ".join(cells) + " |")
    total = " | ".join(f"{cpu_total[n]:.2f}" for n in STRATEGIES)
    print(f"| CPU s, all clips | {total} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="make the clips here and keep them")
    args = parser.parse_args()
    if not VTEST.is_file():
        sys.exit(f"needs the shared footage {VTEST}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        clip = work / "vtest-1080p.mp4"
        if not clip.exists():
            make_1080p(clip)
        throughput(clip)
        detection(work)


if __name__ == "__main__":
    main()
