"""What the gateway and its analytics worker processes tell each other.

Jobs go to a worker through its bounded queue, results come back through one shared queue
(:mod:`multiprocessing` pickles them; they are plain frozen dataclasses). A camera is
always handled by the same worker, so its jobs arrive in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analytics.events import Report
from gateway.hub.packet import Packet

Origin = Literal["live", "recording"]

# --- jobs: gateway → worker ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveStart:
    """Sampling of a live camera starts, or resumes after a deliberate pause, at ``now``."""

    camera: str
    now: float


@dataclass(frozen=True, slots=True)
class LiveBatch:
    """What a sampled camera sent since the previous batch, everything up to ``now``.

    ``items`` in arrival order: the hub's packet where the worker must decode it, only the
    arrival time where it need not (signal loss is judged on every arrival, and a float
    costs nothing to send). An empty batch still says "nothing arrived until ``now``".
    """

    camera: str
    now: float
    items: tuple[Packet | float, ...]


@dataclass(frozen=True, slots=True)
class LivePause:
    """Sampling stops on purpose (interval mode, between windows): silence is no loss."""

    camera: str
    now: float


@dataclass(frozen=True, slots=True)
class Segment:
    """A closed recording of ``camera``. ``start``/``end`` are the wall-clock times of its
    first and last picture when known (the recorder's names carry them); without ``start``
    the worker takes the file's modification time minus its length."""

    camera: str
    path: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class Forget:
    """The camera is no longer analysed (deselected or removed): its open events end."""

    camera: str


@dataclass(frozen=True, slots=True)
class Relearn:
    """Drop the camera's scene reference; the next good stretch becomes the new one."""

    camera: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """End every analysis (open events end), report ``Stopped`` and exit."""


LiveJob = LiveStart | LiveBatch | LivePause | Forget  # what live sampling sends
Job = LiveJob | Segment | Relearn | Shutdown

# --- results: worker → gateway ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """An event began (``Onset``) or ended (``Event``); times are epoch seconds."""

    report: Report
    origin: Origin
    segment: str | None = None  # the recording it was found in


@dataclass(frozen=True, slots=True)
class Analysed:
    """The camera's picture was analysed up to ``t`` (sent now and then, not per picture)."""

    camera: str
    t: float
    origin: Origin


@dataclass(frozen=True, slots=True)
class SegmentDone:
    """A recording was analysed (``error_code`` None) or could not be (a clear error)."""

    camera: str
    path: str
    seconds: float  # of video analysed
    cpu_seconds: float
    error_code: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceChanged:
    """The camera's scene reference was learned (``at``: when) or dropped (``at`` None)."""

    camera: str
    at: float | None


@dataclass(frozen=True, slots=True)
class Stopped:
    worker: int


Result = Found | Analysed | SegmentDone | ReferenceChanged | Stopped
