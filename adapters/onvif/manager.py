"""ONVIF cameras in the gateway: onboarding into the catalog, PTZ, snapshots, events, health.

One :class:`OnvifManager` per gateway (``Gateway.onvif``). The catalog stays the only
record of a camera: an ONVIF camera is an ordinary catalog camera whose source holds the
RTSP URIs that GetStreamUri returned and the ONVIF account, plus an :class:`OnvifInfo`.

Health: every ``health_interval`` each ONVIF camera is asked again for its profiles and
stream URIs on a fresh session (a rebooted camera may come back with another address in
its URIs, or another clock). A change is written to the catalog, which makes the hub
reconnect; a change of the ONVIF verdict (answering ↔ not) triggers an immediate hub probe,
so the camera's status shows it now rather than at the next probe round. The verdict itself
is kept here and shown by ``GET /api/v1/cameras/{id}/onvif``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from adapters.onvif import discovery, errors
from adapters.onvif.device import DeviceFacts, OnvifDevice
from adapters.onvif.discovery import discover
from adapters.onvif.events import PullPointWatcher
from adapters.onvif.ptz import Ptz
from adapters.onvif.snapshot import fetch_jpeg
from gateway.catalog.models import Camera, OnvifInfo, StreamSource
from gateway.catalog.store import UPDATABLE_FIELDS
from gateway.errors import GatewayError, NotFound, SourceError
from gateway.hub.snapshot import snapshot as hub_snapshot
from gateway.hub.stream import CameraStream
from gateway.netpolicy import Purpose
from gateway.settings import OnvifSettings

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

_T = TypeVar("_T")
HEALTH_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Onboarded:
    camera: Camera
    facts: DeviceFacts
    created: bool


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    checked_at: float
    code: str = ""
    message: str = ""
    clock_offset: float | None = None


def source_of(facts: DeviceFacts, username: str | None, password: str | None) -> StreamSource:
    return StreamSource(
        main_url=facts.main.uri,
        sub_url=facts.sub.uri if facts.sub else None,
        username=username,
        password=password,
    )


def info_of(facts: DeviceFacts) -> OnvifInfo:
    return OnvifInfo(
        host=facts.host,
        port=facts.port,
        manufacturer=facts.manufacturer,
        model=facts.model,
        firmware=facts.firmware,
        serial=facts.serial,
        main_profile=facts.main.token,
        sub_profile=facts.sub.token if facts.sub else None,
        snapshot_uri=facts.snapshot_uri,
        ptz=facts.ptz,
        events=facts.events,
    )


class OnvifManager:
    def __init__(self, gateway: Gateway, settings: OnvifSettings) -> None:
        self._gateway = gateway
        self.settings = settings
        self.health: dict[str, Health] = {}
        self.watchers: dict[str, PullPointWatcher] = {}
        self._sessions: dict[str, tuple[object, OnvifDevice]] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._checker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._reconcile(await self._gateway.store.all_cameras())
        self._checker = asyncio.get_running_loop().create_task(self._health_loop(), name="onvif")

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        await asyncio.gather(*(w.stop() for w in self.watchers.values()))
        self.watchers.clear()
        for _, device in self._sessions.values():
            await device.close()
        self._sessions.clear()

    def device(
        self, host: str, port: int, username: str | None, password: str | None
    ) -> OnvifDevice:
        """A session to a device (connect with ``async with``), with the gateway's settings."""
        s = self.settings
        return OnvifDevice(
            host,
            port,
            username,
            password,
            timeout=s.timeout,
            compensate_clock=s.compensate_clock,
            clock_tolerance=s.clock_tolerance,
        )

    async def _camera_device(self, camera: Camera) -> OnvifDevice:
        """A session to a catalog camera's device, its address judged by the network policy
        each time: names can resolve elsewhere since the camera was onboarded."""
        info = onvif_info(camera)
        await self._gateway.netpolicy.check_host(info.host, info.port, field="host")
        return self.device(info.host, info.port, camera.source.username, camera.source.password)

    # --- discovery and onboarding --------------------------------------------------------

    async def discover(
        self, *, interface: str | None = None, host: str | None = None, timeout: float | None = None
    ) -> list[tuple[discovery.Discovered, str | None]]:
        cameras = await self._gateway.store.all_cameras()
        return await discover(
            self.settings, cameras, interface=interface, host=host, timeout=timeout
        )

    async def onboard(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        describe: Callable[[StreamSource, OnvifInfo], Camera],
    ) -> Onboarded:
        """Ask the device for its streams and create or update the catalog camera.

        ``describe`` builds the catalog record from the device's source and facts (the
        caller's catalog fields: id, name, class, region, ...).
        """
        async with self.device(host, port, username, password) as device:
            facts = await device.facts()
        camera = describe(source_of(facts, username, password), info_of(facts))
        gateway = self._gateway
        try:
            await gateway.store.get_camera(camera.id)
        except NotFound:
            saved, created = await gateway.create_camera(camera), True
        else:
            changes = {name: getattr(camera, name) for name in UPDATABLE_FIELDS}
            saved, created = await gateway.update_camera(camera.id, changes), False
        await self._forget_session(saved.id)
        stale = self.watchers.pop(saved.id, None)  # it may watch the old address or account
        if stale is not None:
            await stale.stop()
        self.health[saved.id] = Health(
            ok=True, checked_at=time.time(), clock_offset=facts.clock_offset
        )
        await self._reconcile([saved], only=True)
        log.info(
            "camera %s onboarded through ONVIF at %s:%d (%s %s, firmware %s)",
            saved.id,
            host,
            port,
            facts.manufacturer,
            facts.model,
            facts.firmware,
        )
        return Onboarded(saved, facts, created)

    # --- PTZ and snapshots ---------------------------------------------------------------

    async def ptz(self, camera_id: str, action: Callable[[Ptz], Awaitable[_T]]) -> _T:
        """Run ``action`` on the camera's PTZ; a session is kept between commands."""
        camera = await self._gateway.store.get_camera(camera_id)
        info = onvif_info(camera)
        if not info.ptz:
            raise errors.PtzUnsupported(f"camera {camera_id} has no PTZ (its device reports none)")
        device = await self._session(camera)
        try:
            return await action(Ptz(device, info.main_profile))
        except SourceError as exc:
            if not isinstance(exc, errors.OnvifFault):
                await self._forget_session(camera_id)  # reconnect next time: it may have rebooted
            raise

    async def snapshot(self, camera: Camera, stream: CameraStream) -> bytes:
        """JPEG for ``/snapshot.jpg``: the hub's when it is pulling the camera anyway (the
        cached keyframe, no extra load on the camera), else the device's own snapshot URI
        (one HTTP request instead of an RTSP session), else the hub's after all."""
        info = camera.onvif
        if info is not None and info.snapshot_uri and not stream.running:
            try:
                # The URI is the device's word: judged like any URL the gateway opens.
                await self._gateway.netpolicy.check(
                    info.snapshot_uri, Purpose.HTTP, field="snapshot_uri", unresolved_ok=False
                )
                return await fetch_jpeg(
                    info.snapshot_uri,
                    camera.source.username,
                    camera.source.password,
                    timeout=self.settings.timeout,
                )
            except GatewayError as exc:
                log.info("camera %s: device snapshot failed (%s); using the hub", camera.id, exc)
        return await hub_snapshot(stream, timeout=self._gateway.settings.hub.probe_timeout)

    async def _session(self, camera: Camera) -> OnvifDevice:
        key = (camera.onvif, camera.source)
        async with self._locks[camera.id]:
            cached = self._sessions.get(camera.id)
            if cached is not None and cached[0] == key:
                return cached[1]
            if cached is not None:
                await cached[1].close()
            device = await self._camera_device(camera)
            await device.connect()
            self._sessions[camera.id] = (key, device)
            return device

    async def remove(self, camera_id: str) -> None:
        """The camera left the catalog: stop watching its events, drop its session."""
        watcher = self.watchers.pop(camera_id, None)
        if watcher is not None:
            await watcher.stop()
        await self._forget_session(camera_id)

    async def _forget_session(self, camera_id: str) -> None:
        cached = self._sessions.pop(camera_id, None)
        if cached is not None:
            await cached[1].close()

    # --- events --------------------------------------------------------------------------

    async def _reconcile(self, cameras: list[Camera], *, only: bool = False) -> None:
        """Watch the events of these cameras (``only``: of these, leave the others alone)."""
        wanted = {
            c.id for c in cameras if self.settings.events and c.onvif is not None and c.onvif.events
        }
        considered = {c.id for c in cameras} if only else set(self.watchers)
        for camera_id in considered - wanted:
            watcher = self.watchers.pop(camera_id, None)
            if watcher is not None:
                await watcher.stop()
        for camera_id in wanted - set(self.watchers):
            watcher = PullPointWatcher(
                camera_id,
                self._connector(camera_id),
                self._gateway.events,
                pull_timeout=self.settings.pull_timeout,
                ttl=self.settings.subscription_ttl,
                backoff_initial=self.settings.backoff_initial,
                backoff_max=self.settings.backoff_max,
            )
            self.watchers[camera_id] = watcher
            watcher.start()

    def _connector(self, camera_id: str) -> Callable[[], Awaitable[OnvifDevice]]:
        async def connect() -> OnvifDevice:
            # Read anew each time: the address or the password may have changed since.
            return await self._camera_device(await self._gateway.store.get_camera(camera_id))

        return connect

    # --- health --------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval * random.uniform(0.9, 1.1))
            try:
                await self.check_all()
            except Exception:
                log.exception("ONVIF health round failed")

    async def check_all(self) -> None:
        cameras = await self._gateway.store.all_cameras()
        await self._reconcile(cameras)
        slots = asyncio.Semaphore(HEALTH_CONCURRENCY)

        async def check(camera: Camera) -> None:
            async with slots:
                await self.check(camera)

        results = await asyncio.gather(
            *(check(c) for c in cameras if c.onvif is not None), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Exception):  # e.g. the camera was deleted meanwhile
                log.warning("ONVIF health check failed: %s", result)

    async def check(self, camera: Camera) -> Health:
        """Ask the device again; follow changed stream URIs; feed a changed verdict to the hub."""
        try:
            async with await self._camera_device(camera) as device:
                facts = await device.facts()
        except GatewayError as exc:
            health = Health(ok=False, checked_at=time.time(), code=exc.code, message=exc.message)
        else:
            source = source_of(facts, camera.source.username, camera.source.password)
            info = info_of(facts)
            if source != camera.source or info != camera.onvif:
                log.warning(
                    "camera %s: the ONVIF device changed its streams or facts; catalog updated",
                    camera.id,
                )
                await self._gateway.update_camera(camera.id, {"source": source, "onvif": info})
                await self._forget_session(camera.id)
            health = Health(ok=True, checked_at=time.time(), clock_offset=facts.clock_offset)
        before = self.health.get(camera.id)
        self.health[camera.id] = health
        stream = self._gateway.hub.find(camera.id)
        if before is not None and before.ok != health.ok and stream is not None:
            await self._gateway.hub.probe(stream)
        return health


def onvif_info(camera: Camera) -> OnvifInfo:
    if camera.onvif is None:
        raise errors.NotAnOnvifCamera(
            f"camera {camera.id} was not onboarded through ONVIF; onboard it with "
            "POST /api/v1/onvif/cameras"
        )
    return camera.onvif
