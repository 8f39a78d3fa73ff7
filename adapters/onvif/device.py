"""One ONVIF device session: clock check, service addresses, facts for onboarding.

Built on onvif-zeep-async (WSDLs bundled, nothing fetched from the network). Every request
is bounded by ``timeout`` and every failure leaves as an :mod:`adapters.onvif.errors` class.

The clock: WS-Security UsernameToken signs each request with the sender's time, and devices
refuse timestamps a few minutes off theirs. So a session first reads the device's clock
with the unauthenticated GetSystemDateAndTime (ONVIF Core puts it in the PRE_AUTH class)
and, when ``compensate_clock`` is on, signs with the device's time from then on; the offset
is reported so that someone fixes NTP on the camera. The library's own ``adjust_time`` is
not used: ``update_xaddrs`` resets the offset it needs, and the gateway must know the offset
to report it and to tell a wrong clock from a wrong password.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

from onvif import ONVIFCamera
from onvif.client import ONVIFService
from onvif.definition import SERVICES

from adapters.onvif import errors
from gateway.redact import redact

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_RTSP_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}


@dataclass(frozen=True, slots=True)
class StreamProfile:
    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float
    uri: str  # RTSP URI from GetStreamUri, userinfo removed
    ptz: bool  # the profile carries a PTZ configuration


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    host: str
    port: int
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    profiles: tuple[StreamProfile, ...]
    main: StreamProfile
    sub: StreamProfile | None
    snapshot_uri: str | None
    ptz: bool
    events: bool
    clock_offset: float | None  # device clock minus ours, seconds; None if unreadable


def without_userinfo(uri: str) -> str:
    """Some firmwares put the account into the URIs they return; the catalog keeps it apart."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class OnvifDevice:
    """``async with OnvifDevice(host, port, user, password) as device: ...``."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        *,
        timeout: float = 10.0,
        compensate_clock: bool = True,
        clock_tolerance: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.where = f"{host}:{port}"
        self.timeout = timeout
        self.compensate_clock = compensate_clock
        self.clock_tolerance = clock_tolerance
        self.clock_offset: float | None = None
        self._username = username
        self._password = password
        redact.add(password)  # some firmwares echo the request, token and all, in faults
        self._camera: ONVIFCamera | None = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def camera(self) -> ONVIFCamera:
        if self._camera is None:
            raise RuntimeError("OnvifDevice is not connected")
        return self._camera

    async def connect(self) -> None:
        """Read the clock, authenticate, and learn the addresses of the device's services."""
        await self.close()
        # no_cache: the zeep cache is for WSDLs fetched over HTTP; ours are all local.
        self._camera = ONVIFCamera(
            self.host, self.port, self._username, self._password, no_cache=True
        )
        try:
            await self._read_clock()
            device = await self.service("devicemgmt")
            try:
                services = await self._bounded(device.GetServices({"IncludeCapability": False}))
                addresses = {s.Namespace: s.XAddr for s in services or () if s.XAddr}
            except errors.OnvifFault:  # GetServices is optional before Profile S 2.x
                capabilities = await self._bounded(device.GetCapabilities({"Category": "All"}))
                addresses = {
                    SERVICES[name.lower()]["ns"]: capabilities[name]["XAddr"]
                    for name in capabilities
                    if name.lower() in SERVICES and capabilities[name] is not None
                }
        except BaseException:
            await self.close()
            raise
        self.camera.xaddrs = addresses

    async def _read_clock(self) -> None:
        device = await self.service("devicemgmt")
        sent = time.time()
        try:
            reply = await self._bounded(device.authless_GetSystemDateAndTime())
        except errors.OnvifAuthFailed:
            return  # a device that demands auth even for its clock: offset unknown
        received = time.time()
        utc = reply.UTCDateTime
        if utc is None:
            return
        device_time = dt.datetime(
            utc.Date.Year,
            utc.Date.Month,
            utc.Date.Day,
            utc.Time.Hour,
            utc.Time.Minute,
            utc.Time.Second,
            tzinfo=dt.UTC,
        ).timestamp()
        # The device stamped its reply somewhere between our send and receive; it sends
        # whole seconds, so offsets under a second are noise.
        self.clock_offset = round(device_time - (sent + received) / 2)
        if self.compensate_clock and abs(self.clock_offset) > self.clock_tolerance:
            log.warning(
                "ONVIF device %s: clock is %+d s off ours; signing with its time (fix its NTP)",
                self.where,
                self.clock_offset,
            )
            camera = self.camera
            camera.dt_diff = dt.timedelta(seconds=self.clock_offset)
            # Services keep the offset they were made with: make devicemgmt anew.
            stale = camera.services.pop(("devicemgmt", None))
            await stale.close()

    async def service(self, name: str, port_type: str | None = None) -> ONVIFService:
        """The client for one of the device's services; Conflict-class error if it has none.

        ``port_type`` selects a per-subscription address (``PullPointSubscription``), which
        the caller puts into ``camera.xaddrs`` first, as onvif-zeep-async does.
        """
        if name != "devicemgmt" and not self.has(name, port_type):
            if name == "ptz":
                raise errors.PtzUnsupported(f"{self.where} has no PTZ service")
            if name == "events":
                raise errors.EventsUnsupported(f"{self.where} has no events service")
            raise errors.OnvifFault(f"{self.where} has no {name} service")
        return await self._bounded(self.camera.create_onvif_service(name, port_type))

    def has(self, name: str, port_type: str | None = None) -> bool:
        namespace = SERVICES[name]["ns"] + (f"/{port_type}" if port_type else "")
        return bool(self.camera.xaddrs.get(namespace))

    async def call(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        port_type: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One ONVIF operation, e.g. ``call("ptz", "GotoHomePosition", {"ProfileToken": t})``.

        ``timeout`` replaces the session's for long polls (PullMessages).
        """
        client = await self.service(service, port_type)
        return await self._bounded(getattr(client, operation)(dict(params or {})), timeout)

    async def _bounded(self, work: Awaitable[_T], timeout: float | None = None) -> _T:
        try:
            async with asyncio.timeout(timeout or self.timeout):
                return await work
        except Exception as exc:
            error = errors.classify(exc, self.where)
            offset = self.clock_offset
            if isinstance(error, errors.OnvifAuthFailed) and offset is not None:
                if abs(offset) > self.clock_tolerance and not self.compensate_clock:
                    raise errors.OnvifClockSkew(
                        f"{self.where}: the device clock is {offset:+.0f} s off ours and it "
                        "refuses our WS-Security timestamps; set its clock (NTP) or enable "
                        "onvif.compensate_clock"
                    ) from None
            raise error from None

    async def facts(self) -> DeviceFacts:
        """What onboarding needs: identity, profiles with stream URIs, snapshot URI."""
        info = await self.call("devicemgmt", "GetDeviceInformation")
        media = await self.service("media")
        profiles = []
        for profile in await self._bounded(media.GetProfiles()) or ():
            encoder = profile.VideoEncoderConfiguration
            if encoder is None or encoder.Resolution is None:
                continue  # an audio-only or metadata profile
            reply = await self.call(
                "media", "GetStreamUri", {"StreamSetup": _RTSP_SETUP, "ProfileToken": profile.token}
            )
            rate = encoder.RateControl
            profiles.append(
                StreamProfile(
                    token=profile.token,
                    name=profile.Name or profile.token,
                    encoding=str(encoder.Encoding),
                    width=int(encoder.Resolution.Width),
                    height=int(encoder.Resolution.Height),
                    fps=float(rate.FrameRateLimit) if rate is not None else 0.0,
                    uri=without_userinfo(reply.Uri),
                    ptz=profile.PTZConfiguration is not None,
                )
            )
        if not profiles:
            raise errors.NotOnvif(f"{self.where}: the device offers no video profile")
        main, sub = choose_streams(profiles)
        snapshot_uri = None
        try:
            reply = await self.call("media", "GetSnapshotUri", {"ProfileToken": main.token})
            snapshot_uri = without_userinfo(reply.Uri) if reply and reply.Uri else None
        except errors.OnvifFault:
            pass  # optional in Profile S: snapshots then come from the hub
        return DeviceFacts(
            host=self.host,
            port=self.port,
            manufacturer=str(info.Manufacturer or ""),
            model=str(info.Model or ""),
            firmware=str(info.FirmwareVersion or ""),
            serial=str(info.SerialNumber or ""),
            hardware_id=str(info.HardwareId or ""),
            profiles=tuple(profiles),
            main=main,
            sub=sub,
            snapshot_uri=snapshot_uri,
            ptz=self.has("ptz") and main.ptz,
            events=self.has("events"),
            clock_offset=self.clock_offset,
        )

    async def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            await camera.close()


def choose_streams(profiles: list[StreamProfile]) -> tuple[StreamProfile, StreamProfile | None]:
    """Main: the largest picture. Sub: the smallest one on a different URI, if any."""
    by_size = sorted(profiles, key=lambda p: (p.width * p.height, p.fps), reverse=True)
    main = by_size[0]
    others = [p for p in by_size[1:] if p.uri != main.uri]
    return main, (others[-1] if others else None)
