"""From the event log to what people read: a camera's diagnosis, and a region's 完好率.

A camera's **diagnosis** is the latest state of every event type: a fault is active while
its latest analytics event is still open. It is derived from the event log alone, so it
is the same before and after a restart, whichever process found the events.

A region's **完好率** (intact rate) is the share of its online cameras whose picture has no
active fault, over the region's whole subtree (a county includes its townships); its online
rate is the share of its cameras online. A camera never analysed counts as intact: nothing
is known against it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from analytics.events import FAULTS, EventType
from gateway.catalog.codes import parse_region_code
from gateway.catalog.models import Camera
from gateway.eventlog import Record

SOURCE = "analytics"  # the bus and event-log source of every analytics event
FAULT_ORDER = [t for t in EventType if t in FAULTS]


@dataclass(frozen=True, slots=True)
class TypeState:
    type: EventType
    active: bool
    last: Record | None  # the latest event of this type, open or ended


@dataclass(frozen=True, slots=True)
class Diagnosis:
    camera: str
    states: list[TypeState]  # every event type, faults first in vocabulary order

    @property
    def faults(self) -> list[EventType]:
        """The faults active now."""
        return [s.type for s in self.states if s.active and s.type.is_fault]


def diagnose(camera: str, latest: Iterable[Record]) -> Diagnosis:
    """``latest``: the camera's latest analytics event of each type (EventLog.latest)."""
    by_type = {record.type: record for record in latest}
    states = []
    for kind in EventType:
        record = by_type.get(kind.value)
        states.append(TypeState(kind, record is not None and record.end is None, record))
    return Diagnosis(camera, states)


def active_faults(open_events: Iterable[Record]) -> dict[str, set[EventType]]:
    """camera → its active faults, from the open analytics events of all cameras."""
    faults: dict[str, set[EventType]] = defaultdict(set)
    for record in open_events:
        if record.camera is not None and record.type in FAULTS:
            faults[record.camera].add(EventType(record.type))
    return faults


@dataclass(frozen=True, slots=True)
class RegionQuality:
    code: str
    cameras: int  # in the region's subtree
    online: int
    intact: int  # online and no active fault

    @property
    def online_ratio(self) -> float:
        return self.online / self.cameras if self.cameras else 0.0

    @property
    def intact_ratio(self) -> float:
        """完好率: intact share of the online cameras."""
        return self.intact / self.online if self.online else 0.0


def region_quality(
    cameras: Iterable[Camera], online: set[str], faults: Mapping[str, set[EventType]]
) -> list[RegionQuality]:
    """Every region that has cameras in its subtree, by code."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for camera in cameras:
        is_online = camera.id in online
        intact = is_online and not faults.get(camera.id)
        code: str | None = camera.region
        while code is not None:
            counts = totals[code]
            counts[0] += 1
            counts[1] += is_online
            counts[2] += intact
            code = parse_region_code(code).parent
    return [RegionQuality(code, *totals[code]) for code in sorted(totals)]
