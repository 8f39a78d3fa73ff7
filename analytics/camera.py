"""``sharpeyes analyze CAMERA_ID``: diagnose one live camera from the command line.

The gateway's own code path, in this process: a hub pulls the camera, the
:class:`~analytics.live.LiveSampler` picks the packets, and a
:class:`~analytics.worker.Worker` analyses them — in a thread here, fed through a bounded
queue, where the gateway uses a process. Nothing depends on a running gateway (a camera can
be checked on a technician's laptop); the price is that a camera the gateway also pulls
gets a second session. The camera is looked up in the catalog under the data folder, then
in the configuration (its cameras, the demo camera). The stored scene reference is used,
never replaced.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from adapters import open_source
from analytics.config import AnalysisConfig
from analytics.detectors.signal_loss import SignalLossThresholds
from analytics.live import LiveSampler
from analytics.messages import Forget, Found, Job, LiveJob, Result, Shutdown
from analytics.sampler import Strategy
from analytics.worker import Worker, WorkerConfig
from gateway.catalog.models import StreamSource
from gateway.catalog.store import CatalogStore
from gateway.errors import NotFound
from gateway.hub.hub import MAIN, SUB, Hub
from gateway.settings import Settings

CHANNEL = 64  # batches between the sampler and the analysing thread


async def find_source(settings: Settings, camera_id: str) -> StreamSource:
    """The camera's source: from the catalog (if the data folder has one), else the YAML."""
    catalog = Path(settings.data_dir) / "catalog.sqlite3"
    if catalog.is_file():
        async with await CatalogStore.open(catalog) as store:
            try:
                return (await store.get_camera(camera_id)).source
            except NotFound:
                pass
    for camera in settings.cameras:
        if camera.id == camera_id:
            return camera.to_camera().source
    if settings.demo.enabled and settings.demo.id == camera_id:
        return StreamSource(main_url=settings.demo.url)
    raise NotFound(f"camera {camera_id} is neither in {catalog} nor in the configuration")


async def analyze_camera(
    settings: Settings,
    camera_id: str,
    *,
    seconds: float | None,
    strategy: Strategy,
    width: int,
    emit: Callable[[Found], None],
) -> None:
    """Analyse the camera for ``seconds`` (None: until cancelled); ``emit`` is told every
    event as it begins and as it ends (from the analysing thread)."""
    source = await find_source(settings, camera_id)
    hub_settings = settings.hub
    hub = Hub(hub_settings.stream_config(), probe_interval=3600.0)
    open_camera = partial(
        open_source,
        username=source.username,
        password=source.password,
        transport=hub_settings.rtsp_transport,
        open_timeout=hub_settings.open_timeout,
        read_timeout=hub_settings.read_timeout,
    )
    await hub.put(camera_id, MAIN, partial(open_camera, source.main_url), always_on=False)
    if source.sub_url:
        await hub.put(camera_id, SUB, partial(open_camera, source.sub_url), always_on=False)

    live = settings.analytics.live
    config = AnalysisConfig(strategy=strategy, width=width)
    loss = SignalLossThresholds(max_gap=live.signal_loss_after)
    config = replace(config, detectors=replace(config.detectors, signal_loss=loss))
    references = Path(settings.data_dir) / "analytics" / "references"
    worker_config = WorkerConfig(0, config, config, references, store_references=False)

    def on_result(result: Result) -> None:
        if isinstance(result, Found):
            emit(result)

    worker = Worker(worker_config, on_result)
    jobs: queue.Queue[Job] = queue.Queue(CHANNEL)

    def analyse() -> None:
        while worker.handle(jobs.get()):
            pass

    def send(job: LiveJob) -> bool:
        try:
            jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    thread = threading.Thread(target=analyse, name="analyze", daemon=True)
    thread.start()
    sampler = LiveSampler(live.model_copy(update={"strategy": str(strategy)}), hub, send)
    try:
        await sampler.sample(camera_id, seconds)
    finally:
        await hub.close()
        for job in (Forget(camera_id), Shutdown()):  # open events end with the analysis
            await asyncio.to_thread(jobs.put, job)
        await asyncio.to_thread(thread.join)
