"""``sharpeyes analyze FILE... | CAMERA_ID``: diagnose recordings, or a live camera.

Files: one line per event as soon as it has ended; with ``--json`` a JSON object with
``type``, ``start``, ``end`` (seconds from the file's start), ``score``, ``file`` and,
with ``--evidence DIR``, ``thumbnail`` (the path of the evidence JPEG written there).
A file that cannot be analysed is reported on stderr and the others are still analysed;
the exit status is then 1. On a terminal, stderr shows a progress bar.

A 20-digit camera id: the camera is pulled and analysed live for ``--seconds`` (0: until
Ctrl-C) by the gateway's own code path (see :mod:`analytics.camera`); it is looked up in
the catalog under ``--data`` and in ``--config``. An event is printed when it begins
(``end`` null) and again when it ends; ``start``/``end`` are epoch seconds and each line
also has ``camera``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from analytics.analyze import analyze_files
from analytics.camera import analyze_camera
from analytics.config import AnalysisConfig
from analytics.errors import AnalysisError
from analytics.events import Event
from analytics.messages import Found
from analytics.sampler import Strategy
from gateway import settings as gateway_settings
from gateway.catalog.codes import parse_device_code
from gateway.errors import GatewayError, InvalidInput


def _strategy(text: str) -> Strategy:
    try:
        return Strategy.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _width(text: str) -> int:
    if not text.isdigit() or not 16 <= int(text) <= 3840:
        raise argparse.ArgumentTypeError(f"width must be 16-3840 pixels, got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets", nargs="+", metavar="FILE_OR_CAMERA_ID", help="media files, or one camera id"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument(
        "--strategy",
        type=_strategy,
        default=Strategy.auto(),
        help="what to decode: auto (default), keyframes, all or fps:N",
    )
    parser.add_argument(
        "--width", type=_width, default=320, help="analysis width in pixels (default 320)"
    )
    parser.add_argument(
        "--evidence", type=Path, metavar="DIR", help="write each event's thumbnail JPEG here"
    )
    camera = parser.add_argument_group("a live camera")
    camera.add_argument(
        "--seconds", type=float, default=30.0, help="how long to watch (default 30; 0: until ^C)"
    )
    camera.add_argument("--config", type=Path, help="YAML configuration (cameras, hub, analytics)")
    camera.add_argument("--data", type=Path, help="data folder (default: the configuration's)")
    parser.set_defaults(func=run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``analyze`` subcommand; the handler is ``args.func(args) -> exit status``."""
    parser = subparsers.add_parser(
        "analyze",
        help="diagnose video files (black, frozen, blur, ... and motion)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)


class ProgressBar:
    """A one-line progress bar, redrawn at most ten times a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.name = ""
        self.duration: float | None = None
        self._drawn = 0.0

    def start(self, path: Path, duration: float | None) -> None:
        self.name, self.duration, self._drawn = path.name, duration, 0.0

    def __call__(self, t: float) -> None:
        now = time.monotonic()
        if now - self._drawn < 0.1:
            return
        self._drawn = now
        if self.duration:
            done = min(1.0, max(0.0, t / self.duration))
            bar = "#" * round(30 * done)
            line = f"{self.name} [{bar:<30}] {done:4.0%} {t:.0f}/{self.duration:.0f} s"
        else:
            line = f"{self.name} {t:.0f} s"
        self.out.write(f"\r{line}\033[K")
        self.out.flush()

    def clear(self) -> None:
        self.out.write("\r\033[K")
        self.out.flush()


def _line(path: Path, event: Event, evidence: Path | None, as_json: bool, index: int) -> str:
    thumbnail = None
    if evidence is not None and event.thumbnail:
        thumbnail = evidence / f"{path.stem}-{index:04d}-{event.type}.jpg"
        thumbnail.write_bytes(event.thumbnail)
    if as_json:
        record: dict[str, object] = {
            "type": str(event.type),
            "start": round(event.start, 3),
            "end": round(event.end, 3),
            "score": round(event.score, 3),
            "file": str(path),
        }
        if thumbnail is not None:
            record["thumbnail"] = str(thumbnail)
        return json.dumps(record)
    text = f"{path}\t{event.start:8.2f} - {event.end:8.2f} s\t{event.type:<12}\t{event.score:.2f}"
    return text if thumbnail is None else f"{text}\t{thumbnail}"


def _camera_id(targets: list[str]) -> str | None:
    """The camera id if the targets are one (and no file of that name exists)."""
    if len(targets) != 1 or Path(targets[0]).exists():
        return None
    try:
        parse_device_code(targets[0])
    except InvalidInput:
        return None
    return targets[0]


def run(args: argparse.Namespace) -> int:
    camera_id = _camera_id(args.targets)
    if camera_id is not None:
        return run_camera(args, camera_id)
    return run_files(args, [Path(target) for target in args.targets])


def _camera_line(found: Found, evidence: Path | None, as_json: bool, index: int) -> str:
    report = found.report
    end = report.end if isinstance(report, Event) else None
    thumbnail = None
    if evidence is not None and report.thumbnail:
        phase = "end" if isinstance(report, Event) else "start"
        thumbnail = evidence / f"{report.camera}-{index:04d}-{report.type}-{phase}.jpg"
        thumbnail.write_bytes(report.thumbnail)
    if as_json:
        record: dict[str, object] = {
            "type": str(report.type),
            "start": round(report.start, 3),
            "end": None if end is None else round(end, 3),
            "score": round(report.score, 3),
            "camera": report.camera,
        }
        if thumbnail is not None:
            record["thumbnail"] = str(thumbnail)
        return json.dumps(record)

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")

    until = "(going on)" if end is None else iso(end)
    text = f"{report.camera}\t{iso(report.start)} - {until}\t{report.type:<12}\t{report.score:.2f}"
    return text if thumbnail is None else f"{text}\t{thumbnail}"


def run_camera(args: argparse.Namespace, camera_id: str) -> int:
    settings = gateway_settings.load(args.config)
    if args.data is not None:
        settings.data_dir = args.data
    if args.evidence is not None:
        args.evidence.mkdir(parents=True, exist_ok=True)
    printed = 0

    def emit(found: Found) -> None:
        nonlocal printed
        print(_camera_line(found, args.evidence, args.json, printed), flush=True)
        printed += 1

    watch = analyze_camera(
        settings,
        camera_id,
        seconds=args.seconds or None,
        strategy=args.strategy,
        width=args.width,
        emit=emit,
    )
    try:
        asyncio.run(watch)
    except GatewayError as exc:
        print(f"sharpeyes analyze: {exc.message} [{exc.code}]", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the analysis has ended: its open events were printed
        pass
    return 0


def run_files(args: argparse.Namespace, files: list[Path]) -> int:
    config = AnalysisConfig(strategy=args.strategy, width=args.width)
    if args.evidence is not None:
        args.evidence.mkdir(parents=True, exist_ok=True)
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    failed = False

    def on_error(path: Path, exc: AnalysisError) -> None:
        nonlocal failed
        failed = True
        if bar is not None:
            bar.clear()
        print(f"sharpeyes analyze: {exc.message} [{exc.code}]", file=sys.stderr)

    events = analyze_files(
        files, config, on_error=on_error, on_start=bar.start if bar else None, progress=bar
    )
    for index, (path, event) in enumerate(events):
        if bar is not None:
            bar.clear()
        print(_line(path, event, args.evidence, args.json, index), flush=True)
    if bar is not None:
        bar.clear()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analytics.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
