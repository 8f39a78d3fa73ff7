"""The catalog's records: cameras, their sources, and the region tree.

Plain frozen dataclasses that validate themselves in ``__post_init__``, so every way a
record comes into being — API, YAML config, a row read back from SQLite, or
``dataclasses.replace`` for a PATCH — passes the same checks. Never serialise a
:class:`Camera` or :class:`StreamSource` with ``dataclasses.asdict``: that would include the
password. Use :meth:`StreamSource.public` for anything that leaves the process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypedDict, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from gateway.catalog.codes import (
    DEVICE_TYPES,
    FRONT_END_TYPES,
    DeviceCode,
    InvalidDeviceCode,
    RegionLevel,
    parse_device_code,
    parse_region_code,
)
from gateway.errors import InvalidInput
from gateway.redact import redact

__all__ = [
    "Camera",
    "CameraClass",
    "OnvifInfo",
    "Origin",
    "PublicSource",
    "RecordingPolicy",
    "Region",
    "RegionNode",
    "Sector",
    "StreamSource",
]


class CameraClass(StrEnum):
    """Camera class as the 雪亮工程 plans grade points: A is the most important."""

    A = "A"
    B = "B"
    C = "C"

    @property
    def label(self) -> str:
        return _CLASS_LABELS[self]


_CLASS_LABELS = {CameraClass.A: "一类", CameraClass.B: "二类", CameraClass.C: "三类"}


class Sector(StrEnum):
    POLICE = "police"
    EDUCATION = "education"
    HEALTH = "health"
    TRANSPORT = "transport"
    RESIDENTIAL = "residential"
    COMMERCE = "commerce"
    OTHER = "other"


class RecordingPolicy(StrEnum):
    CONTINUOUS = "continuous"
    OFF = "off"


class Origin(StrEnum):
    """Where a camera was declared: the YAML config (re-applied at start) or the API."""

    CONFIG = "config"
    API = "api"


_Enum = TypeVar("_Enum", bound=StrEnum)


def _coerce(kind: type[_Enum], value: str, name: str) -> _Enum:
    # Lets update_camera(camera_class="B") and rows read from SQLite carry plain strings.
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{name} must be one of: {allowed}", field=name) from None


def _text(value: str, name: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(f"{name} must not be empty", field=name)
    return stripped


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PublicSource(TypedDict):
    """What the API may show of a source: no userinfo, no username, no password."""

    main_url: str
    sub_url: str | None
    has_credentials: bool


# demo:// is the gateway's own synthetic camera (adapters/demo.py): no network involved.
_SCHEMES = ("rtsp", "rtsps", "demo")


def _split_credentials(url: str, name: str) -> tuple[str, str | None, str | None]:
    """Return ``url`` without userinfo, and the percent-decoded username and password.

    Error messages never echo the URL: it may carry a password.
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidInput(f"{name} is not a valid URL", field=name) from None
    if parts.scheme not in _SCHEMES:  # urlsplit lower-cases the scheme
        # The scheme is not echoed: in "user:pw@host" urlsplit takes "user" for the scheme.
        raise InvalidInput(f"{name} must be an rtsp:// or rtsps:// URL (or demo://)", field=name)
    if not parts.hostname:
        raise InvalidInput(f"{name} has no host", field=name)
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return clean, username, password


@dataclass(frozen=True, slots=True)
class StreamSource:
    """An RTSP source: main stream and optional sub stream of one camera.

    Credentials may arrive inside the URLs (``rtsp://user:pass@host/...``); they are moved
    into ``username``/``password`` here, so the stored URLs never carry them. Both streams
    of a camera share one account.
    """

    main_url: str
    sub_url: str | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        username, password = self.username or None, self.password or None
        main_url, main_user, main_pass = _split_credentials(self.main_url, "main_url")
        sub_url, sub_user, sub_pass = (
            _split_credentials(self.sub_url, "sub_url") if self.sub_url else (None, None, None)
        )
        for url_user, url_pass in ((main_user, main_pass), (sub_user, sub_pass)):
            if url_user is None and url_pass is None:
                continue
            if (username, password) not in ((None, None), (url_user, url_pass)):
                raise InvalidInput(
                    "the source carries two different sets of credentials; give them once",
                    field="source",
                )
            username, password = url_user, url_pass
        if password is not None and username is None:
            raise InvalidInput("a source password needs a username", field="username")
        object.__setattr__(self, "main_url", main_url)
        object.__setattr__(self, "sub_url", sub_url)
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "password", password)
        # Every password enters the process through here (API, config, database), so this
        # is where log redaction learns it.
        redact.add(password)

    def __repr__(self) -> str:
        password = None if self.password is None else "***"
        return (
            f"StreamSource(main_url={self.main_url!r}, sub_url={self.sub_url!r}, "
            f"username={self.username!r}, password={password!r})"
        )

    def public(self) -> PublicSource:
        return PublicSource(
            main_url=self.main_url,
            sub_url=self.sub_url,
            has_credentials=self.username is not None,
        )


@dataclass(frozen=True, slots=True)
class OnvifInfo:
    """What a camera onboarded through ONVIF told about itself (adapters/onvif).

    ``main_profile`` is the media profile the main stream and PTZ use; the URIs never carry
    credentials (the account is the source's).
    """

    host: str
    port: int
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    main_profile: str = ""
    sub_profile: str | None = None
    snapshot_uri: str | None = None
    ptz: bool = False
    events: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", _text(self.host, "host"))
        if not 1 <= self.port <= 65535:
            raise InvalidInput("port must be between 1 and 65535", field="port")
        if self.snapshot_uri is not None and "@" in (urlsplit(self.snapshot_uri).netloc):
            raise InvalidInput("snapshot_uri must not carry credentials", field="snapshot_uri")


@dataclass(frozen=True, slots=True)
class Region:
    """A node of the region tree; ``level`` and ``parent`` follow from the code."""

    code: str
    name: str
    level: RegionLevel = field(init=False)
    parent: str | None = field(init=False)

    def __post_init__(self) -> None:
        parsed = parse_region_code(self.code, field="code")
        object.__setattr__(self, "name", _text(self.name, "name"))
        object.__setattr__(self, "level", parsed.level)
        object.__setattr__(self, "parent", parsed.parent)


@dataclass(slots=True)
class RegionNode:
    """A region with its sub-regions, for the tree view."""

    region: Region
    children: list[RegionNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Camera:
    """One catalog entry. ``id`` is its 20-digit GB/T 28181 device code."""

    id: str
    name: str
    camera_class: CameraClass
    region: str
    owner_unit: str
    sector: Sector
    source: StreamSource
    lat: float | None = None
    lon: float | None = None
    recording: RecordingPolicy = RecordingPolicy.OFF
    tags: tuple[str, ...] = ()
    onvif: OnvifInfo | None = None
    origin: Origin = Origin.API
    created_at: datetime = field(default_factory=_utcnow)
    updated_at: datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        device = parse_device_code(self.id, field="id")
        if device.type_code not in FRONT_END_TYPES:
            raise InvalidDeviceCode(
                f"type code {device.type_code} (digits 11-13) is a "
                f"{DEVICE_TYPES[device.type_code].kind}, not a front-end device",
                part="type_code",
                field="id",
            )
        parse_region_code(self.region, field="region")
        if (self.lat is None) != (self.lon is None):
            raise InvalidInput("lat and lon must be given together", field="lat")
        if self.lat is not None and not (math.isfinite(self.lat) and -90 <= self.lat <= 90):
            raise InvalidInput("lat must be between -90 and 90", field="lat")
        if self.lon is not None and not (math.isfinite(self.lon) and -180 <= self.lon <= 180):
            raise InvalidInput("lon must be between -180 and 180", field="lon")
        set_ = object.__setattr__
        set_(self, "name", _text(self.name, "name"))
        set_(self, "owner_unit", _text(self.owner_unit, "owner_unit"))
        set_(self, "camera_class", _coerce(CameraClass, self.camera_class, "camera_class"))
        set_(self, "sector", _coerce(Sector, self.sector, "sector"))
        set_(self, "recording", _coerce(RecordingPolicy, self.recording, "recording"))
        set_(self, "origin", _coerce(Origin, self.origin, "origin"))
        set_(self, "tags", tuple(dict.fromkeys(_text(tag, "tags") for tag in self.tags)))

    @property
    def device(self) -> DeviceCode:
        return parse_device_code(self.id)
