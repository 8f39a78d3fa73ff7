"""Cameras API: onboarding, validation, filters, live status, snapshots, secrecy."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from tests.inprocess import gateway_of

DEMO_ID = "11010500001320000001"
PASSWORD = "S3cret-Pa55!"


def camera(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "34150200001310000001",
        "name": "城北派出所门口",
        "class": "A",
        "region": "341502001",
        "owner_unit": "城北派出所",
        "sector": "police",
        "source": {"main_url": "demo://gate?fps=10", "username": "admin", "password": PASSWORD},
        "tags": ["entrance"],
    }
    body.update(overrides)
    return body


async def regions(client: httpx.AsyncClient) -> None:
    for code, name in [
        ("341502", "金安区"),
        ("341502001", "城北街道"),
        ("341502101", "椿树镇"),
        ("341502101201", "椿树村"),
    ]:
        r = await client.post("/api/v1/regions", json={"code": code, "name": name})
        assert r.status_code == 201, r.text


async def test_demo_camera_goes_online_and_snapshots(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/api/v1/cameras/{DEMO_ID}/snapshot.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8"
    body = (await client.get(f"/api/v1/cameras/{DEMO_ID}")).json()
    status = body["status"]
    assert status["state"] == "online" and status["codec"] == "h264"
    assert (status["width"], status["height"]) == (640, 360)
    assert body["class"] == "A" and body["class_label"] == "一类"


async def test_create_get_patch_delete(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await regions(client)
    r = await client.post("/api/v1/cameras", json=camera())
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["source"] == {
        "main_url": "demo://gate?fps=10",
        "sub_url": None,
        "has_credentials": True,
    }
    cid = created["id"]
    r = await client.patch(f"/api/v1/cameras/{cid}", json={"name": "南门", "class": "B"})
    assert r.status_code == 200 and r.json()["name"] == "南门" and r.json()["class"] == "B"
    assert (await client.get(f"/api/v1/cameras/{cid}/snapshot.jpg")).status_code == 200
    assert (await client.delete(f"/api/v1/cameras/{cid}")).status_code == 204
    r = await client.get(f"/api/v1/cameras/{cid}")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert gateway_of(client).hub.find(cid) is None
    assert PASSWORD not in caplog.text


async def test_credentials_in_url_are_split_out_and_never_returned(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await regions(client)
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:9/nothing"
    r = await client.post("/api/v1/cameras", json=camera(source={"main_url": url}))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    # The camera cannot be reached: the error text and status must still be secret-free.
    r = await client.get(f"/api/v1/cameras/{cid}/snapshot.jpg")
    assert r.status_code in (502, 504)
    responses = [
        r.text,
        (await client.get(f"/api/v1/cameras/{cid}")).text,
        (await client.get("/api/v1/cameras")).text,
        (await client.get("/metrics")).text,
    ]
    for text in responses:
        assert PASSWORD not in text
    assert "rtsp://127.0.0.1:9/nothing" in responses[1]
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"id": "3415020000131000000"}, "id", "20"),
        ({"id": "99150200001310000001"}, "id", "province"),
        ({"id": "34150200009990000001"}, "id", "type code 999"),
        ({"region": "3415"}, "region", "region"),
        ({"class": "D"}, "class", "'A', 'B' or 'C'"),
        ({"sector": "army"}, "sector", "police"),
        ({"source": {"main_url": "http://127.0.0.1/x"}}, "source.main_url", "rtsp"),
        ({"source": {"main_url": "file:///etc/passwd"}}, "source.main_url", "rtsp"),
        ({"lat": 91, "lon": 0}, "lat", "90"),
    ],
)
async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, override: dict[str, Any], field: str, words: str
) -> None:
    r = await client.post("/api/v1/cameras", json=camera(**override))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_request"
    assert body["field"] == field, body
    assert words in body["message"], body
    assert "Traceback" not in r.text


async def test_unknown_region_and_duplicate_id(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/cameras", json=camera())
    assert r.status_code == 422 and r.json()["field"] == "region"
    await regions(client)
    assert (await client.post("/api/v1/cameras", json=camera())).status_code == 201
    r = await client.post("/api/v1/cameras", json=camera())
    assert r.status_code == 409 and r.json()["code"] == "conflict"


async def test_bad_path_id_names_the_part(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/cameras/34150200009990000001")
    assert r.status_code == 422 and "type code" in r.json()["message"]
    r = await client.get("/api/v1/cameras/abc/snapshot.jpg")
    assert r.status_code == 422


async def test_list_filters_and_pagination(client: httpx.AsyncClient) -> None:
    await regions(client)
    specs = [
        ("34150200001310000001", "A", "341502001", "police"),
        ("34150200051320000002", "B", "341502101201", "education"),
        ("34150200051320000003", "C", "341502101", "residential"),
    ]
    for cid, cls, region, sector in specs:
        r = await client.post(
            "/api/v1/cameras",
            json=camera(
                id=cid,
                **{"class": cls},
                region=region,
                sector=sector,
                source={"main_url": "rtsp://127.0.0.1:9/x"},
            ),
        )
        assert r.status_code == 201, r.text

    async def ids(query: str) -> list[str]:
        r = await client.get(f"/api/v1/cameras?{query}")
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]]

    assert await ids("region=341502101") == ["34150200051320000002", "34150200051320000003"]
    assert await ids("region=341502") == [s[0] for s in specs]
    assert await ids("class=B") == ["34150200051320000002"]
    assert await ids("sector=education") == ["34150200051320000002"]
    assert await ids("sector=police") == [DEMO_ID, "34150200001310000001"]
    page = (await client.get("/api/v1/cameras?limit=2&offset=1")).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert (await client.get("/api/v1/cameras?region=12")).status_code == 422
    assert (await client.get("/api/v1/cameras?limit=0")).status_code == 422


async def test_status_filter(client: httpx.AsyncClient) -> None:
    await regions(client)
    r = await client.post(
        "/api/v1/cameras", json=camera(source={"main_url": "rtsp://127.0.0.1:9/x"})
    )
    cid = r.json()["id"]
    gateway = gateway_of(client)
    await asyncio.gather(*(gateway.hub.probe(s) for s in gateway.hub))
    online = (await client.get("/api/v1/cameras?status=online")).json()["items"]
    offline = (await client.get("/api/v1/cameras?status=offline")).json()["items"]
    assert [c["id"] for c in online] == [DEMO_ID]
    assert [c["id"] for c in offline] == [cid]
    assert offline[0]["status"]["reason"] == "refused"


async def test_regions_tree_counts_and_delete_refused(client: httpx.AsyncClient) -> None:
    await regions(client)
    assert (await client.post("/api/v1/cameras", json=camera())).status_code == 201
    tree = (await client.get("/api/v1/regions")).json()
    county = next(n for n in tree if n["code"] == "341502")
    assert county["cameras"] == 1 and county["level"] == "county"
    assert {c["code"] for c in county["children"]} == {"341502001", "341502101"}
    r = await client.delete("/api/v1/regions/341502001")
    assert r.status_code == 409 and "camera" in r.json()["message"]
    r = await client.patch("/api/v1/regions/341502001", json={"name": "城北"})
    assert r.status_code == 200 and r.json()["name"] == "城北"
    assert (
        await client.post("/api/v1/regions", json={"code": "34150", "name": "x"})
    ).status_code == 422
    assert (await client.delete("/api/v1/regions/341502101201")).status_code == 204


async def test_metrics_and_health(client: httpx.AsyncClient) -> None:
    await client.get(f"/api/v1/cameras/{DEMO_ID}/snapshot.jpg")
    text = (await client.get("/metrics")).text
    assert f'sharpeyes_camera_online{{camera="{DEMO_ID}",region="110105",class="A"}} 1' in text
    assert 'sharpeyes_region_online_ratio{region="110105"} 1' in text
    assert "# TYPE sharpeyes_camera_packets_total counter" in text
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["online"] >= 1


async def test_openapi_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/cameras/{camera_id}/snapshot.jpg" in spec["paths"]
