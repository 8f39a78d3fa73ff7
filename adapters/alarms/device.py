"""An alarm box as the catalog holds it.

A frozen dataclass that validates itself (as :class:`gateway.catalog.models.Camera` does),
so a device from the API, from a database row or from ``dataclasses.replace`` for a PATCH
passes the same checks. The shared secret is write-only: it is left out of ``repr`` and of
:meth:`AlarmDevice.public`, and registered with the log redactor the moment it exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.catalog.codes import (
    ALARM_INPUT_TYPES,
    DEVICE_TYPES,
    InvalidDeviceCode,
    parse_device_code,
    parse_region_code,
)

# The catalog's own field checks, so a device and a camera refuse the same things alike.
from gateway.catalog.models import Sector, _coerce, _text
from gateway.errors import InvalidInput
from gateway.redact import redact

MIN_SECRET = 16  # HMAC keys shorter than this are guessable offline from one signed request
MAX_CAMERAS = 16
MAX_PHONES = 8
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{2,23}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_secret(secret: str, name: str = "secret") -> str:
    if not MIN_SECRET <= len(secret) <= 256 or not secret.isprintable():
        raise InvalidInput(f"{name} must be {MIN_SECRET} to 256 printable characters", field=name)
    return secret


@dataclass(frozen=True, slots=True)
class AlarmDevice:
    """``id`` is the box's GB/T 28181 code (type 134); ``serial`` the vendor's, if mapped."""

    id: str
    name: str
    school: str  # the owner unit
    region: str
    secret: str = field(repr=False)
    sector: Sector = Sector.EDUCATION
    location: str = ""
    serial: str | None = None
    cameras: tuple[str, ...] = ()  # linked cameras, in the order the wall shows them
    phones: tuple[str, ...] = ()
    token_hash: str | None = field(default=None, repr=False)  # query-token devices only
    heartbeat_interval: float | None = None  # None: the gateway's default
    online: bool | None = None  # None: never heard from
    last_seen: float | None = None
    created_at: datetime = field(default_factory=_utcnow)
    updated_at: datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        device = parse_device_code(self.id, field="id")
        if device.type_code not in ALARM_INPUT_TYPES:
            raise InvalidDeviceCode(
                f"type code {device.type_code} (digits 11-13) is a "
                f"{DEVICE_TYPES[device.type_code].kind}; an alarm box is 134 (alarm input)",
                part="type_code",
                field="id",
            )
        parse_region_code(self.region, field="region")
        set_ = object.__setattr__
        set_(self, "name", _text(self.name, "name"))
        set_(self, "school", _text(self.school, "school"))
        set_(self, "sector", _coerce(Sector, self.sector, "sector"))
        set_(self, "location", self.location.strip())
        if self.serial is not None:
            serial = self.serial.strip()
            if not _SERIAL.fullmatch(serial) or (len(serial) == 20 and serial.isdigit()):
                # A 20-digit serial would be read as a device code in the intake URL.
                raise InvalidInput(
                    "serial must be 1 to 64 letters, digits or . _ : - (and not 20 digits)",
                    field="serial",
                )
            set_(self, "serial", serial)
        cameras = tuple(dict.fromkeys(self.cameras))
        if len(cameras) > MAX_CAMERAS:
            raise InvalidInput(f"at most {MAX_CAMERAS} linked cameras", field="cameras")
        for camera in cameras:
            parse_device_code(camera, field="cameras")
        set_(self, "cameras", cameras)
        phones = tuple(dict.fromkeys(p.strip() for p in self.phones))
        if len(phones) > MAX_PHONES or not all(_PHONE.fullmatch(p) for p in phones):
            raise InvalidInput(
                f"phones: at most {MAX_PHONES} numbers of digits, spaces, dashes and a leading +",
                field="phones",
            )
        set_(self, "phones", phones)
        check_secret(self.secret)
        if self.heartbeat_interval is not None and not 5 <= self.heartbeat_interval <= 86_400:
            raise InvalidInput(
                "heartbeat_interval must be 5 to 86400 seconds", field="heartbeat_interval"
            )
        # Every secret enters the process through here (API, database): logs learn it here.
        redact.add(self.secret)

    def public(self) -> dict[str, Any]:
        """Everything but the secret and the token hash: what may leave the process."""
        return {
            "id": self.id,
            "name": self.name,
            "school": self.school,
            "sector": self.sector.value,
            "region": self.region,
            "location": self.location,
            "serial": self.serial,
            "cameras": list(self.cameras),
            "phones": list(self.phones),
            "has_token": self.token_hash is not None,
            "heartbeat_interval": self.heartbeat_interval,
            "online": self.online,
            "last_seen": self.last_seen,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
