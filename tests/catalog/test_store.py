"""The SQLite catalog store."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.catalog.codes import InvalidDeviceCode, InvalidRegionCode
from gateway.catalog.models import (
    Camera,
    CameraClass,
    Origin,
    RecordingPolicy,
    Region,
    Sector,
    StreamSource,
)
from gateway.catalog.store import SCHEMA_VERSION, CatalogStore
from gateway.errors import Conflict, InvalidInput, NotFound

COUNTY, TOWNSHIP, VILLAGE = "340202", "340202001", "340202001001"
OTHER_TOWNSHIP, OTHER_COUNTY = "340202002", "340203"
PASSWORD = "s3cr3t-Pa55"


def camera_id(serial: int, type_code: int = 132) -> str:
    return f"3402020000{type_code}{serial:07d}"


def make_camera(serial: int, region: str = TOWNSHIP, **overrides: object) -> Camera:
    fields: dict[str, object] = {
        "id": camera_id(serial),
        "name": f"camera {serial}",
        "camera_class": CameraClass.B,
        "region": region,
        "owner_unit": "镜湖分局",
        "sector": Sector.POLICE,
        "source": StreamSource(f"rtsp://admin:{PASSWORD}@10.0.0.{serial % 250}/live"),
    }
    fields.update(overrides)
    return Camera(**fields)  # type: ignore[arg-type]


async def seed_regions(store: CatalogStore) -> None:
    for code, name in [
        (COUNTY, "镜湖区"),
        (TOWNSHIP, "滨江街道"),
        (VILLAGE, "北门社区"),
        (OTHER_TOWNSHIP, "范罗山街道"),
        (OTHER_COUNTY, "弋江区"),
    ]:
        await store.create_region(Region(code, name))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CatalogStore]:
    async with await CatalogStore.open(tmp_path / "data" / "catalog.db") as store:
        await seed_regions(store)
        yield store


# --- regions -----------------------------------------------------------------------------


async def test_region_crud_and_tree(store: CatalogStore) -> None:
    assert [r.code for r in await store.list_regions()] == [
        COUNTY,
        TOWNSHIP,
        VILLAGE,
        OTHER_TOWNSHIP,
        OTHER_COUNTY,
    ]
    renamed = await store.update_region(TOWNSHIP, "滨江街道办事处")
    assert (await store.get_region(TOWNSHIP)) == renamed
    assert renamed.parent == COUNTY

    tree = await store.region_tree()
    assert [node.region.code for node in tree] == [COUNTY, OTHER_COUNTY]
    townships = tree[0].children
    assert [node.region.code for node in townships] == [TOWNSHIP, OTHER_TOWNSHIP]
    assert [node.region.name for node in townships[0].children] == ["北门社区"]
    assert tree[1].children == []


async def test_region_errors(store: CatalogStore) -> None:
    with pytest.raises(Conflict):
        await store.create_region(Region(COUNTY, "again"))
    with pytest.raises(InvalidInput) as caught:
        await store.create_region(Region("340207001", "no county yet"))
    assert (caught.value.code, caught.value.field) == ("unknown_region", "code")
    with pytest.raises(NotFound):
        await store.get_region("340207")
    with pytest.raises(NotFound):
        await store.update_region("340207", "x")
    with pytest.raises(InvalidRegionCode):
        await store.get_region("340200")
    with pytest.raises(InvalidInput) as caught:
        await store.update_region(COUNTY, " ")
    assert caught.value.field == "name"


async def test_delete_region_is_refused_while_referenced(store: CatalogStore) -> None:
    await store.create_camera(make_camera(1, region=TOWNSHIP))
    await store.create_camera(make_camera(2, region=TOWNSHIP))
    with pytest.raises(Conflict, match=r"2 camera\(s\) and 1 sub-region\(s\)"):
        await store.delete_region(TOWNSHIP)
    with pytest.raises(Conflict, match=r"0 camera\(s\) and 2 sub-region\(s\)"):
        await store.delete_region(COUNTY)

    await store.delete_region(VILLAGE)
    await store.delete_camera(camera_id(1))
    await store.update_camera(camera_id(2), region=OTHER_TOWNSHIP)
    await store.delete_region(TOWNSHIP)
    with pytest.raises(NotFound):
        await store.delete_region(TOWNSHIP)


async def test_upsert_region_creates_or_renames(store: CatalogStore) -> None:
    await store.upsert_region(Region(COUNTY, "镜湖区（新）"))
    await store.upsert_region(Region("340207", "鸠江区"))
    assert (await store.get_region(COUNTY)).name == "镜湖区（新）"
    assert (await store.get_region("340207")).name == "鸠江区"


# --- cameras -----------------------------------------------------------------------------


async def test_camera_crud(store: CatalogStore) -> None:
    created = await store.create_camera(make_camera(1, tags=("gate",), lat=31.34, lon=118.37))
    assert created.origin is Origin.API
    assert created.created_at == created.updated_at
    assert await store.get_camera(created.id) == created

    updated = await store.update_camera(
        created.id,
        name="北门 2",
        camera_class="A",
        recording=RecordingPolicy.CONTINUOUS,
        source=StreamSource("rtsp://10.0.0.9/main", username="viewer", password="n3w-pass"),
    )
    assert updated.camera_class is CameraClass.A
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    assert await store.get_camera(created.id) == updated

    await store.delete_camera(created.id)
    with pytest.raises(NotFound):
        await store.get_camera(created.id)
    with pytest.raises(NotFound):
        await store.delete_camera(created.id)


async def test_camera_errors(store: CatalogStore) -> None:
    original = await store.create_camera(make_camera(1))
    with pytest.raises(Conflict, match=camera_id(1)):
        await store.create_camera(make_camera(1, name="duplicate"))
    with pytest.raises(InvalidInput) as caught:
        await store.create_camera(make_camera(2, region="340207"))
    assert (caught.value.code, caught.value.field) == ("unknown_region", "region")
    with pytest.raises(NotFound):
        await store.update_camera(camera_id(3), name="x")
    with pytest.raises(InvalidDeviceCode) as bad_id:
        await store.get_camera("34020200009990000001")
    assert bad_id.value.part == "type_code"

    with pytest.raises(InvalidInput) as caught:
        await store.update_camera(camera_id(1), id=camera_id(9), colour="red")
    assert "cannot change colour, id" in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        await store.update_camera(camera_id(1), lat=100.0, lon=0.0)
    assert caught.value.field == "lat"
    with pytest.raises(InvalidInput) as caught:
        await store.update_camera(camera_id(1), region="340207")
    assert caught.value.code == "unknown_region"
    # Nothing of the refused changes was written.
    assert await store.get_camera(camera_id(1)) == original


async def test_region_filter_returns_the_whole_subtree(store: CatalogStore) -> None:
    await store.create_camera(make_camera(1, region=COUNTY))
    await store.create_camera(make_camera(2, region=TOWNSHIP))
    await store.create_camera(make_camera(3, region=VILLAGE))
    await store.create_camera(make_camera(4, region=OTHER_TOWNSHIP))
    await store.create_camera(make_camera(5, region=OTHER_COUNTY))

    async def ids(region: str) -> list[int]:
        cameras, total = await store.list_cameras(region=region)
        assert total == len(cameras)
        return [int(c.id[-7:]) for c in cameras]

    assert await ids(COUNTY) == [1, 2, 3, 4]
    assert await ids(TOWNSHIP) == [2, 3]
    assert await ids(VILLAGE) == [3]
    assert await ids(OTHER_TOWNSHIP) == [4]
    assert await ids(OTHER_COUNTY) == [5]
    assert await ids("340207") == []
    with pytest.raises(InvalidRegionCode):
        await store.list_cameras(region="3402")


async def test_other_filters_combine(store: CatalogStore) -> None:
    await store.create_camera(make_camera(1, camera_class=CameraClass.A))
    await store.create_camera(make_camera(2, sector=Sector.EDUCATION))
    await store.create_camera(make_camera(3, region=OTHER_COUNTY, camera_class=CameraClass.A))
    cameras, total = await store.list_cameras(camera_class=CameraClass.A)
    assert [c.id for c in cameras] == [camera_id(1), camera_id(3)] and total == 2
    cameras, _ = await store.list_cameras(camera_class=CameraClass.A, region=COUNTY)
    assert [c.id for c in cameras] == [camera_id(1)]
    cameras, _ = await store.list_cameras(sector=Sector.EDUCATION)
    assert [c.id for c in cameras] == [camera_id(2)]
    cameras, total = await store.list_cameras(ids={camera_id(2), camera_id(3), camera_id(99)})
    assert [c.id for c in cameras] == [camera_id(2), camera_id(3)] and total == 2
    assert await store.list_cameras(ids=set()) == ([], 0)


async def test_pagination(store: CatalogStore) -> None:
    for serial in reversed(range(1, 26)):
        await store.create_camera(make_camera(serial))
    pages = [await store.list_cameras(limit=10, offset=offset) for offset in (0, 10, 20, 30)]
    assert [len(page) for page, _ in pages] == [10, 10, 5, 0]
    assert {total for _, total in pages} == {25}
    assert [c.id for page, _ in pages for c in page] == [camera_id(n) for n in range(1, 26)]
    assert await store.list_cameras(limit=0) == ([], 25)
    with pytest.raises(InvalidInput):
        await store.list_cameras(limit=-1)
    with pytest.raises(InvalidInput):
        await store.list_cameras(offset=-1)


async def test_config_cameras(store: CatalogStore) -> None:
    api_camera = await store.create_camera(make_camera(1))
    declared = await store.upsert_camera(make_camera(2))
    assert declared.origin is Origin.CONFIG
    # Re-applying the same config (every start) writes nothing.
    assert await store.upsert_camera(make_camera(2)) == declared
    changed = await store.upsert_camera(make_camera(2, name="renamed"))
    assert changed.created_at == declared.created_at
    assert changed.updated_at > declared.updated_at
    # The config takes over a camera it declares.
    taken = await store.upsert_camera(make_camera(1, name="from config"))
    assert (taken.origin, taken.created_at) == (Origin.CONFIG, api_camera.created_at)

    await store.create_camera(make_camera(3))
    assert await store.prune_config_cameras({camera_id(2)}) == [camera_id(1)]
    cameras, _ = await store.list_cameras()
    assert [(c.id, c.origin) for c in cameras] == [
        (camera_id(2), Origin.CONFIG),
        (camera_id(3), Origin.API),
    ]


async def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    async with await CatalogStore.open(path) as store:
        await seed_regions(store)
        created = await store.create_camera(make_camera(7, region=VILLAGE, tags=("夜间",)))
    async with await CatalogStore.open(path) as store:
        assert await store.get_camera(created.id) == created
        assert (await store.get_camera(created.id)).source.password == PASSWORD
        assert len(await store.list_regions()) == 5

    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = dict(raw.execute("SELECT name, version FROM schema_versions").fetchall())
        assert versions == {"catalog": SCHEMA_VERSION}
        row = raw.execute("SELECT main_url, username, password, secret FROM cameras").fetchone()
        file_bytes = path.read_bytes() + path.with_name(path.name + "-wal").read_bytes()
    finally:
        raw.close()
    # Credentials live in their own columns, never inside the stored URL, and the password
    # only sealed with the key from the key file beside the database (not in it).
    assert row[:3] == ("rtsp://10.0.0.7/live", "admin", None)
    assert row[3].startswith("v1:") and PASSWORD not in row[3]
    assert PASSWORD.encode() not in file_bytes
    assert (path.parent / "secret.key").stat().st_mode & 0o777 == 0o600


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE schema_versions (name TEXT PRIMARY KEY, version INTEGER)")
    raw.execute("INSERT INTO schema_versions VALUES ('catalog', ?)", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(RuntimeError, match="newer release"):
        await CatalogStore.open(path)


async def test_concurrent_calls(store: CatalogStore) -> None:
    created = await asyncio.gather(*(store.create_camera(make_camera(n)) for n in range(50)))
    assert len({c.id for c in created}) == 50
    fetched, (_, total) = await asyncio.gather(
        asyncio.gather(*(store.get_camera(c.id) for c in created)),
        store.list_cameras(),
    )
    assert fetched == created and total == 50

    # Racing creates of one id: exactly one wins, the others get a clean Conflict.
    results = await asyncio.gather(
        *(store.create_camera(make_camera(99, name=f"racer {n}")) for n in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Camera) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 4


async def test_credentials_never_in_repr(store: CatalogStore) -> None:
    created = await store.create_camera(make_camera(1))
    cameras, _ = await store.list_cameras()
    for text in (
        repr(created),
        str(created),
        repr(cameras),
        repr(await store.get_camera(created.id)),
    ):
        assert PASSWORD not in text


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = await CatalogStore.open(tmp_path / "catalog.db")
    pending = store.list_regions()
    await asyncio.gather(pending, store.close())  # a call queued before close completes
    await store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await store.list_regions()


async def test_db_work_runs_off_the_event_loop(store: CatalogStore) -> None:
    # The connection belongs to the worker thread: touching it from the loop is refused.
    with pytest.raises(sqlite3.ProgrammingError):
        store._db._db.execute("SELECT 1")
