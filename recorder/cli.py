"""``sharpeyes export CAMERA START END FILE``: recorded footage to one MP4, from the command line.

Reads the recordings index and segment files directly (the gateway may be running or
not), so an operator can export evidence even when the API is down. START and END are ISO
8601 with a UTC offset (``2025-01-01T20:00:00+08:00``) or epoch seconds. On stderr: a
progress bar, then what the file covers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from gateway import settings as config
from gateway.audit import Action
from gateway.auth.cli import record_sync
from gateway.errors import GatewayError, InvalidInput
from recorder import export
from recorder.index import Index, Segment
from recorder.layout import iso, parse_time


def register(commands: Any) -> None:
    """Add the ``export`` subcommand to the ``sharpeyes`` parser."""
    parser = commands.add_parser("export", help="write recorded footage of a camera to an MP4")
    parser.add_argument("camera", help="camera id (20-digit device code)")
    parser.add_argument("start", help="ISO 8601 with offset, or epoch seconds")
    parser.add_argument("end", help="ISO 8601 with offset, or epoch seconds")
    parser.add_argument("file", type=Path, help="the MP4 to write")
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--data", type=Path, help="data folder (default from the configuration)")
    parser.set_defaults(func=run)


class ProgressBar:
    def __init__(self, out: TextIO, width: int = 40) -> None:
        self._out = out
        self._width = width
        self._shown = -1

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent == self._shown:
            return
        self._shown = percent
        done = round(fraction * self._width)
        bar = "#" * done + "-" * (self._width - done)
        self._out.write(f"\rexporting [{bar}] {percent:3d}%")
        if percent >= 100:
            self._out.write("\n")
        self._out.flush()


async def _segments(index_path: Path, camera: str, start: float, end: float) -> list[Segment]:
    index = await Index.open(index_path)
    try:
        return await index.segments(camera, start, end)
    finally:
        await index.close()


def run(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    data_dir: Path = args.data or settings.data_dir
    root = settings.recorder.root or data_dir / "recordings"
    index_path = data_dir / "recordings.sqlite3"
    try:
        start, end = parse_time(args.start, "start"), parse_time(args.end, "end")
        if not end > start:
            raise InvalidInput("END must be after START", field="end")
        if not index_path.is_file():
            print(f"no recordings index at {index_path}", file=sys.stderr)
            return 1
        segments = asyncio.run(_segments(index_path, args.camera, start, end))
        plan = export.plan(args.camera, segments, start, end)
        packets = export.write(plan, root, args.file, ProgressBar(sys.stderr))
    except GatewayError as exc:
        print(exc.message, file=sys.stderr)
        return 2 if exc.status == 422 else 1
    except OSError as exc:  # a segment deleted meanwhile, no room for the output, ...
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"export failed: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    # Evidence leaving the system is audited whoever takes it: a shell user as much as the API.
    record_sync(
        data_dir,
        Action.EXPORT,
        camera=args.camera,
        detail={"start": iso(plan.start), "end": iso(plan.end), "file": str(args.file)},
    )
    size = args.file.stat().st_size
    print(
        f"{args.file}: {iso(plan.start)} to {iso(plan.end)} (decoding from the keyframe at "
        f"{iso(plan.keyframe)}), {len(plan.segments)} segment(s), {packets} packets, "
        f"{size / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0
