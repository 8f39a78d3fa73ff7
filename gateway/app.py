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

from fastapi import FastAPI

from adapters import open_source
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
from gateway.hub.hub import MAIN, SUB, Hub
from gateway.hub.status import State
from gateway.hub.stream import CameraStream
from gateway.settings import Settings

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, settings: Settings, store: CatalogStore, hub: Hub) -> None:
        self.settings = settings
        self.store = store
        self.hub = hub

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
        try:
            await gateway._apply_config()
            cameras = await store.all_cameras()
            for camera in cameras:
                await gateway._attach(camera)
        except BaseException:
            await gateway.close()
            raise
        hub.start_probing()
        log.info("gateway started with %d camera(s)", len(cameras))
        return gateway

    async def close(self) -> None:
        await self.hub.close()
        await self.store.close()
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

    async def create_camera(self, camera: Camera) -> Camera:
        created = await self.store.create_camera(camera)
        await self._attach(created)
        return created

    async def update_camera(self, camera_id: str, changes: dict[str, Any]) -> Camera:
        before = await self.store.get_camera(camera_id)
        updated = await self.store.update_camera(camera_id, **changes)
        if updated.source != before.source or updated.recording != before.recording:
            await self._attach(updated)
        return updated

    async def delete_camera(self, camera_id: str) -> None:
        await self.store.delete_camera(camera_id)
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
        )

    def stream(self, camera_id: str, stream: str = MAIN) -> CameraStream:
        return self.hub.get(camera_id, stream)

    def ids_in_state(self, state: State) -> set[str]:
        return {s.camera_id for s in self.hub if s.status.state == state}


def create_app(settings: Settings) -> FastAPI:
    # Routers depend on Gateway (this module): imported here, when the app is assembled.
    from gateway.api import cameras, errors, health, regions

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
    )
    errors.install(app)
    for module in (cameras, regions, health):
        app.include_router(module.router)
    return app
