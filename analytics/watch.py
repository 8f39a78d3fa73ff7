"""Finished recordings appearing in a folder (``analytics.watch_dir``).

The recorder announces each closed segment on the bus (``segment_closed``); this is the
other way in, for footage the gateway did not record itself, or a recorder that does not
announce its segments: ``<watch_dir>/<camera id>/.../<file>``. Files named as the recorder
names its segments (``<start>_<end>.mp4``, :mod:`recorder.layout`) carry their wall-clock
times; for any other name the worker takes the file's modification time as its end.

A file is taken once it has not changed for ``settle`` seconds, in the order files
appeared (their inode change time, which a rename into the folder also sets, unlike the
modification time a copy may preserve). What was taken is remembered as a cursor, (change
time, path) of the last file done, persisted in ``state_path``: a restart neither misses
nor repeats a file; a file whose analysis a crash interrupted is taken again. Names ending
in ``.part`` or ``.tmp`` and hidden files are being written by someone: never taken.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from gateway.catalog.codes import parse_device_code
from gateway.errors import InvalidInput
from recorder.layout import parse_path

log = logging.getLogger(__name__)

Key = tuple[int, str]  # (st_ctime_ns, path relative to the folder)
_WRITING = (".part", ".tmp")


@dataclass(frozen=True, slots=True)
class Arrival:
    key: Key
    path: Path
    camera: str
    start: float | None
    end: float | None


class WatchFolder:
    """Not thread-safe: one caller at a time (the scan runs in a worker thread, ``done`` on
    the event loop, never together)."""

    def __init__(self, root: Path, state_path: Path, settle: float) -> None:
        self.root = root
        self.state_path = state_path
        self.settle = settle
        self._cursor: Key = self._load()
        self._pending: dict[str, Key] = {}  # taken, not yet done: relative path → key, in order
        self._finished: set[str] = set()  # done, but behind one still pending

    def _load(self) -> Key:
        try:
            ns, path = json.loads(self.state_path.read_text())["cursor"]
            return int(ns), str(path)
        except FileNotFoundError:
            return 0, ""
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("%s unreadable (%s): rescanning %s", self.state_path, exc, self.root)
            return 0, ""

    def scan(self, now: float) -> list[Arrival]:
        """Files not yet taken, oldest first, up to the first one still changing."""
        found: list[tuple[Key, Path, float]] = []
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                if name.startswith(".") or name.endswith(_WRITING):
                    continue
                path = Path(folder, name)
                try:
                    stat = path.stat()
                except OSError:  # removed meanwhile
                    continue
                key = (stat.st_ctime_ns, path.relative_to(self.root).as_posix())
                if key > self._cursor and key[1] not in self._pending:
                    found.append((key, path, stat.st_mtime))
        found.sort()
        arrivals = []
        for key, path, mtime in found:
            if now - mtime < self.settle:
                break  # still being written; what came after it waits its turn
            arrival = self._arrival(key, path)
            self._pending[key[1]] = key
            if arrival is None:
                self.done(key[1])
            else:
                arrivals.append(arrival)
        return arrivals

    def _arrival(self, key: Key, path: Path) -> Arrival | None:
        named = parse_path(self.root, path)
        if named is not None and named.end is not None:
            return Arrival(key, path, named.camera_id, named.start, named.end)
        camera = Path(key[1]).parts[0]
        try:
            parse_device_code(camera)
        except InvalidInput:
            log.warning("%s: not under a folder named by a camera id; skipped", path)
            return None
        return Arrival(key, path, camera, None, None)

    def done(self, path: str | Path) -> None:
        """The file was analysed, or failed for good: the cursor moves past every file done
        up to the oldest one still being analysed."""
        relative = Path(path)
        if relative.is_absolute():
            if not relative.is_relative_to(self.root):
                return  # not from this folder (the recorder's bus events)
            relative = relative.relative_to(self.root)
        name = relative.as_posix()
        if name not in self._pending:
            return
        self._finished.add(name)
        passed = None
        while self._pending and (first := next(iter(self._pending))) in self._finished:
            passed = self._pending.pop(first)
            self._finished.discard(first)
        if passed is not None:
            self._cursor = passed
            self._save()

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        aside = self.state_path.with_name(self.state_path.name + ".tmp")
        aside.write_text(json.dumps({"cursor": list(self._cursor)}))
        os.replace(aside, self.state_path)
