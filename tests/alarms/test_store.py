"""Alarm devices in the catalog database: references, scope listing, secrets, liveness."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.alarms.device import AlarmDevice
from adapters.alarms.errors import UnknownAlarmDevice
from gateway.alarms.store import AlarmStore
from gateway.catalog.models import Camera, CameraClass, Region, Sector, StreamSource
from gateway.catalog.store import CatalogStore
from gateway.errors import Conflict, InvalidInput

CAM = "34150200001320000001"
BOX = "34150200001340000001"
OTHER_BOX = "34150300001340000001"
SECRET = "store-test-secret-value"


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[CatalogStore, AlarmStore]]:
    path = tmp_path / "catalog.sqlite3"
    catalog = await CatalogStore.open(path)
    for code, name in (("341502", "金安区"), ("341502001", "城北"), ("341503", "裕安区")):
        await catalog.create_region(Region(code=code, name=name))
    await catalog.create_camera(
        Camera(id=CAM, name="gate", camera_class=CameraClass.B, region="341502001",
               owner_unit="椿树小学", sector=Sector.EDUCATION,
               source=StreamSource(main_url="rtsp://192.0.2.1/s")),
    )  # fmt: skip
    alarms = AlarmStore(path)
    await alarms.start()
    yield catalog, alarms
    await alarms.close()
    await catalog.close()


def box(**changes: Any) -> AlarmDevice:
    base = AlarmDevice(id=BOX, name="box", school="椿树小学", region="341502001", secret=SECRET,
                       serial="HK-0001", cameras=(CAM,))  # fmt: skip
    return replace(base, **changes)


async def test_create_get_by_code_or_serial_and_secret_sealed(
    stores: tuple[CatalogStore, AlarmStore], tmp_path: Path
) -> None:
    _, alarms = stores
    created = await alarms.create(box(online=True, last_seen=5.0))
    assert created.online is None and created.last_seen is None  # observed, never given
    assert (await alarms.get(BOX)).secret == SECRET
    assert (await alarms.get("HK-0001")).id == BOX
    with pytest.raises(UnknownAlarmDevice):
        await alarms.get("HK-0002")
    with pytest.raises(Conflict):
        await alarms.create(box())
    with pytest.raises(Conflict, match="serial HK-0001"):
        await alarms.create(box(id=OTHER_BOX, region="341503", cameras=()))
    raw = (
        sqlite3.connect(tmp_path / "catalog.sqlite3")
        .execute("SELECT secret FROM alarm_devices")
        .fetchone()[0]
    )
    assert SECRET not in raw and raw.startswith("v1:")


async def test_references_must_exist(stores: tuple[CatalogStore, AlarmStore]) -> None:
    catalog, alarms = stores
    with pytest.raises(InvalidInput) as caught:
        await alarms.create(box(region="341504"))
    assert caught.value.code == "unknown_region"
    with pytest.raises(InvalidInput) as caught:
        await alarms.create(box(cameras=("34150200001320000009",)))
    assert caught.value.code == "unknown_camera"
    await alarms.create(box())
    # A linked camera deleted later is skipped by the linkage and blocks no other edit.
    await catalog.delete_camera(CAM)
    assert (await alarms.update(BOX, {"name": "renamed"})).cameras == (CAM,)


async def test_list_by_region_and_scope(stores: tuple[CatalogStore, AlarmStore]) -> None:
    _, alarms = stores
    await alarms.create(box())
    await alarms.create(box(id=OTHER_BOX, region="341503", serial=None, cameras=()))
    everything, total = await alarms.list_devices()
    assert [d.id for d in everything] == [BOX, OTHER_BOX] and total == 2
    assert [d.id for d in (await alarms.list_devices(region="341502"))[0]] == [BOX]
    assert [d.id for d in (await alarms.list_devices(within=("341503",)))[0]] == [OTHER_BOX]
    assert (await alarms.list_devices(within=()))[1] == 0  # an empty scope sees nothing
    both = await alarms.list_devices(within=("341503", "341502001"), limit=1, offset=1)
    assert [d.id for d in both[0]] == [OTHER_BOX] and both[1] == 2


async def test_update_validates_and_refuses_fixed_fields(
    stores: tuple[CatalogStore, AlarmStore],
) -> None:
    _, alarms = stores
    await alarms.create(box())
    updated = await alarms.update(BOX, {"location": "门卫室", "secret": "a-new-secret-0123456"})
    assert updated.location == "门卫室" and (await alarms.get(BOX)).secret.startswith("a-new")
    with pytest.raises(InvalidInput, match="cannot change online"):
        await alarms.update(BOX, {"online": True})
    with pytest.raises(InvalidInput):
        await alarms.update(BOX, {"phones": ("nope",)})
    await alarms.delete(BOX)
    with pytest.raises(UnknownAlarmDevice):
        await alarms.delete(BOX)


async def test_touch_and_offline(stores: tuple[CatalogStore, AlarmStore]) -> None:
    _, alarms = stores
    await alarms.create(box(heartbeat_interval=10.0))
    await alarms.create(box(id=OTHER_BOX, region="341503", serial=None, cameras=()))
    assert await alarms.touch(BOX, 1000.0) is None  # never heard before
    assert await alarms.touch(BOX, 1010.0) is True
    assert await alarms.touch(OTHER_BOX, 1000.0) is None
    # BOX: 3 x 10 s; OTHER_BOX: 3 x the default 60 s.
    assert await alarms.mark_offline(1039.0, default_interval=60, missed=3, since=0) == []
    gone = await alarms.mark_offline(1041.0, default_interval=60, missed=3, since=0)
    assert [d.id for d in gone] == [BOX] and gone[0].online is False
    assert await alarms.mark_offline(1100.0, default_interval=60, missed=3, since=0) == []
    # Silence while the gateway was down counts from its start, not from the last beat.
    assert await alarms.mark_offline(1200.0, default_interval=60, missed=3, since=1100) == []
    assert [
        d.id for d in await alarms.mark_offline(1200.0, default_interval=60, missed=3, since=0)
    ] == [OTHER_BOX]
    assert await alarms.touch(BOX, 1300.0) is False  # offline before: comes back online
