"""``sharpeyes analyze FILE...``: diagnose recordings from the command line.

Prints one line per event as soon as it has ended: with ``--json`` a JSON object with
``type``, ``start``, ``end`` (seconds from the file's start), ``score``, ``file`` and,
with ``--evidence DIR``, ``thumbnail`` (the path of the evidence JPEG written there).
A file that cannot be analysed is reported on stderr and the others are still analysed;
the exit status is then 1. On a terminal, stderr shows a progress bar.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from analytics.analyze import analyze_files
from analytics.config import AnalysisConfig
from analytics.errors import AnalysisError
from analytics.events import Event
from analytics.sampler import Strategy


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
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="media files")
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


def run(args: argparse.Namespace) -> int:
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
        args.files, config, on_error=on_error, on_start=bar.start if bar else None, progress=bar
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
