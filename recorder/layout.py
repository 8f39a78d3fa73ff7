"""Where segments live on disk, and how their names carry their wall-clock times.

``<root>/<camera id>/<YYYY-MM-DD>/<HH>/<start>_<end>.mp4`` (UTC, from the segment's start),
so an operator can find footage with ``ls`` and the index can be rebuilt from names alone.
A segment being written is ``<start>.mp4.part`` in the same folder: a name that no player
or index scan takes for a finished file, renamed atomically when the segment closes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.errors import InvalidInput

SUFFIX = ".mp4"
PARTIAL_SUFFIX = ".mp4.part"
_STAMP = "%Y%m%dT%H%M%S"
_STAMP_RE = r"\d{8}T\d{6}\.\d{3}Z"
_FINAL = re.compile(rf"^(?P<start>{_STAMP_RE})_(?P<end>{_STAMP_RE})\.mp4$")
_PARTIAL = re.compile(rf"^(?P<start>{_STAMP_RE})\.mp4\.part$")


def stamp(t: float) -> str:
    """``1735732800.04`` → ``20250101T120000.040Z`` (milliseconds, UTC)."""
    ms = round(t * 1000)
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{moment.strftime(_STAMP)}.{ms % 1000:03d}Z"


def iso(t: float) -> str:
    """``2025-01-01T12:00:00.040Z``: how times appear in messages, metadata and playlists."""
    moment = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def parse_time(value: str, field: str) -> float:
    """ISO 8601 with a UTC offset, or epoch seconds → epoch seconds.

    A time without an offset is refused: the same digits are different moments in UTC and
    in Beijing time, and footage is evidence.
    """
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise InvalidInput(f"{field} is not a time", field=field)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field} must be ISO 8601 (2025-01-01T12:00:00Z) or epoch seconds", field=field
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(
            f"{field} needs a UTC offset (Z or +08:00): a bare local time is ambiguous",
            field=field,
        )
    return moment.timestamp()


def parse_stamp(text: str) -> float:
    moment = datetime.strptime(text[:15], _STAMP).replace(tzinfo=UTC)
    return moment.timestamp() + int(text[16:19]) / 1000


def folder(root: Path, camera_id: str, start: float) -> Path:
    moment = datetime.fromtimestamp(start, UTC)
    return root / camera_id / moment.strftime("%Y-%m-%d") / moment.strftime("%H")


def partial_path(root: Path, camera_id: str, start: float) -> Path:
    return folder(root, camera_id, start) / f"{stamp(start)}{PARTIAL_SUFFIX}"


def final_path(root: Path, camera_id: str, start: float, end: float) -> Path:
    return folder(root, camera_id, start) / f"{stamp(start)}_{stamp(end)}{SUFFIX}"


@dataclass(frozen=True, slots=True)
class ParsedName:
    camera_id: str
    start: float
    end: float | None  # None: a partial segment (the writer did not close it)


def parse_path(root: Path, path: Path) -> ParsedName | None:
    """The camera and times a segment path encodes, or None for anything else."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        return None
    if len(relative.parts) != 4:
        return None
    camera_id = relative.parts[0]
    final = _FINAL.match(path.name)
    if final is not None:
        return ParsedName(camera_id, parse_stamp(final["start"]), parse_stamp(final["end"]))
    partial = _PARTIAL.match(path.name)
    if partial is not None:
        return ParsedName(camera_id, parse_stamp(partial["start"]), None)
    return None
