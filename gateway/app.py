"""Assembles the program: settings ▸ catalog ▸ hub ▸ API.

:class:`Gateway` is the one object the routers talk to. It keeps the hub in step with the
catalog: every catalog camera has a main stream (and a sub stream when it has one) in the
hub, always pulled when the camera records, on demand otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from adapters import open_source
from adapters.onvif.manager import OnvifManager
from analytics.service import Analytics
from gateway.alarms.service import AlarmService
from gateway.audit import AuditLog
from gateway.auth.limits import BodyLimit
from gateway.auth.service import Security
from gateway.bus import Bus, create_bus
from gateway.catalog.models import (
    Camera,
    CameraClass,
    Origin,
    RecordingPolicy,
    Region,
    Sector,
    StreamSource,
)
from gateway.catalog.store import CatalogStore
from gateway.errors import InvalidInput, NotFound
from gateway.eventlog import EventLog
from gateway.hub.hub import MAIN, SUB, Hub
from gateway.hub.status import State
from gateway.hub.stream import CameraStream
from gateway.netpolicy import NetPolicy, Purpose
from gateway.relay.whep import Relay
from gateway.settings import Settings
from recorder.service import Recorder

log = logging.getLogger(__name__)


class Gateway:
    # Opened in start(): users, tokens and the audit chain (gateway/auth, gateway/audit.py).
    security: Security
    audit: AuditLog

    def __init__(self, settings: Settings, store: CatalogStore, hub: Hub) -> None:
        self.settings = settings
        self.store = store
        self.hub = hub
        self.netpolicy = NetPolicy(settings.security, own_ports={settings.server.port})
        self.relay = Relay(settings.relay)
        redis = settings.redis_url
        self.bus: Bus = create_bus(redis.get_secret_value() if redis else None)
        self.events = EventLog(Path(settings.data_dir) / "events", self.bus)
        self.recorder = Recorder(
            settings.recorder, Path(settings.data_dir), hub, self.bus, self.events
        )
        self.analytics = Analytics(
            settings, store, hub, self.events, self.bus, recordings=self.recorder.root
        )
        self.onvif = OnvifManager(self, settings.onvif)
        # Before the event log starts: its stream's horizon must precede every message.
        self.alarms = AlarmService(self, settings.alarms)

    @classmethod
    async def start(cls, settings: Settings) -> Gateway:
        data_dir = Path(settings.data_dir)
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        store = await CatalogStore.open(data_dir / "catalog.sqlite3")
        hub = Hub(
            settings.hub.stream_config(),
            probe_interval=settings.hub.probe_interval,
            probe_timeout=settings.hub.probe_timeout,
        )
        gateway = cls(settings, store, hub)
        gateway.security = await Security.open(settings.security, data_dir, gateway.region_of)
        gateway.audit = gateway.security.audit
        try:
            await gateway.events.start()  # first: publishes what a crash left unpublished
            await gateway.recorder.start()  # reconciles the archive before anything records
            await gateway._apply_config()
            cameras = await store.all_cameras()
            for camera in cameras:
                await gateway._attach(camera)
                await gateway.recorder.apply(camera)
            await gateway.onvif.start()  # after the hub has the cameras: health probes them
            await gateway.analytics.start()  # after the hub has the cameras: samples them
            await gateway.alarms.start()  # last: an interrupted linkage needs all of the above
        except BaseException:
            await gateway.close()
            raise
        hub.start_probing()
        log.info("gateway started with %d camera(s)", len(cameras))
        return gateway

    async def close(self) -> None:
        await self.alarms.close()  # its linkage uses the recorder, the hub and the event log
        await self.analytics.close()  # its last events are logged; it holds hub subscribers
        await self.onvif.close()  # its health checks update cameras: stop them first
        await self.relay.close()  # viewers first: they hold hub subscribers
        await self.security.close()  # audits the views the relay just ended
        await self.recorder.close()  # finishes open segments before the hub goes
        await self.hub.close()
        await self.store.close()
        await self.events.close()
        await self.bus.close()
        log.info("gateway stopped")

    async def _apply_config(self) -> None:
        """Declarative regions and cameras from the YAML file (and the demo camera)."""
        demo = self.settings.demo
        regions = [r.to_region() for r in self.settings.regions]
        cameras = [c.to_camera(Origin.CONFIG) for c in self.settings.cameras]
        if demo.enabled:
            regions.append(Region(code=demo.region, name=demo.region_name))
            cameras.append(self._demo_camera())
        for region in sorted(regions, key=lambda r: len(r.code)):  # parents first
            await self.store.upsert_region(region)
        for camera in cameras:
            await self.store.upsert_camera(camera)
        removed = await self.store.prune_config_cameras({c.id for c in cameras})
        if removed:
            log.info(
                "removed %d camera(s) no longer in the configuration: %s",
                len(removed),
                ", ".join(removed),
            )

    def _demo_camera(self) -> Camera:
        demo = self.settings.demo
        return Camera(
            id=demo.id,
            name="Demo camera (synthetic)",
            camera_class=CameraClass.A,
            region=demo.region,
            owner_unit="sharpeyes demo",
            sector=Sector.POLICE,
            source=StreamSource(main_url=demo.url),
            tags=("demo",),
            origin=Origin.CONFIG,
        )

    # --- cameras: catalog and hub together -----------------------------------------

    async def region_of(self, camera_id: str) -> str | None:
        """The camera's region, None if it is not (or no longer) in the catalog."""
        try:
            return (await self.store.get_camera(camera_id)).region
        except (NotFound, InvalidInput):
            return None

    async def _check_source(self, source: StreamSource) -> None:
        """The network policy on a source given through the API (422 if refused)."""
        for field, url in (("main_url", source.main_url), ("sub_url", source.sub_url)):
            if url is not None:
                await self.netpolicy.check(url, Purpose.STREAM, field=f"source.{field}")

    async def create_camera(self, camera: Camera) -> Camera:
        await self._check_source(camera.source)
        created = await self.store.create_camera(camera)
        await self._attach(created)
        await self.recorder.apply(created)
        return created

    async def update_camera(self, camera_id: str, changes: dict[str, Any]) -> Camera:
        before = await self.store.get_camera(camera_id)
        if "source" in changes and changes["source"] != before.source:
            await self._check_source(changes["source"])
        updated = await self.store.update_camera(camera_id, **changes)
        if updated.source != before.source or updated.recording != before.recording:
            await self._attach(updated)
        await self.recorder.apply(updated)  # recording policy and class (retention)
        return updated

    async def delete_camera(self, camera_id: str) -> None:
        await self.store.delete_camera(camera_id)
        await self.onvif.remove(camera_id)
        await self.recorder.remove(camera_id)  # footage stays, under retention
        await self.hub.remove(camera_id)

    async def _attach(self, camera: Camera) -> None:
        source = camera.source
        always_on = camera.recording is RecordingPolicy.CONTINUOUS
        await self.hub.put(
            camera.id, MAIN, self._factory(camera, source.main_url), always_on=always_on
        )
        if source.sub_url:
            await self.hub.put(
                camera.id, SUB, self._factory(camera, source.sub_url), always_on=False
            )
        else:
            await self.hub.remove(camera.id, SUB)

    def _factory(self, camera: Camera, url: str) -> Any:
        hub = self.settings.hub
        return partial(
            open_source,
            url,
            camera.source.username,
            camera.source.password,
            transport=hub.rtsp_transport,
            open_timeout=hub.open_timeout,
            read_timeout=hub.read_timeout,
            policy=self.netpolicy,  # judged again at every connect: DNS may have changed
        )

    def stream(self, camera_id: str, stream: str = MAIN) -> CameraStream:
        return self.hub.get(camera_id, stream)

    def ids_in_state(self, state: State) -> set[str]:
        return {s.camera_id for s in self.hub if s.status.state == state}


def create_app(settings: Settings) -> FastAPI:
    # Routers depend on Gateway (this module): imported here, when the app is assembled.
    from gateway.api import (
        alarms,
        audit,
        auth,
        cameras,
        diagnosis,
        errors,
        events,
        health,
        live,
        onvif,
        ptz,
        recordings,
        regions,
        stream,
    )
    from gateway.auth.rules import enforce

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = await Gateway.start(settings)
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.close()

    app = FastAPI(
        title="sharpeyes video gateway",
        version="0.1.0",
        description="Camera catalog, one-pull media hub and live status for public-video networks.",
        lifespan=lifespan,
        # Every route passes the access table (gateway/auth/rules.py): deny by default.
        dependencies=[Depends(enforce)],
    )
    errors.install(app)
    app.add_middleware(BodyLimit, limit=int(settings.security.max_body_bytes))
    # stream before events, whose /api/v1/events/{event_id} would take "stream" for an id.
    for module in (
        cameras,
        regions,
        health,
        live,
        recordings,
        onvif,
        ptz,
        stream,
        events,
        diagnosis,
        alarms,
    ):
        app.include_router(module.router)
    app.include_router(auth.router)
    app.include_router(audit.router)
    # The operators' video wall: static files, no build step.
    app.mount("/wall", StaticFiles(directory=Path(__file__).with_name("web"), html=True), "wall")
    app.add_api_route("/", lambda: RedirectResponse("/wall/"), include_in_schema=False)
    return app
