"""Catalog records: validation, and credentials that never show."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from adapters.rtsp import with_credentials
from gateway.catalog.codes import InvalidDeviceCode, InvalidRegionCode, RegionLevel
from gateway.catalog.models import (
    Camera,
    CameraClass,
    RecordingPolicy,
    Region,
    Sector,
    StreamSource,
)
from gateway.errors import InvalidInput
from gateway.redact import RedactingFilter

PASSWORD = "s3cr3t-Pa55"


def make_camera(**overrides: object) -> Camera:
    fields: dict[str, object] = {
        "id": "34020200001320000001",
        "name": "镜湖区 北门",
        "camera_class": CameraClass.A,
        "region": "340202001",
        "owner_unit": "镜湖分局",
        "sector": Sector.POLICE,
        "source": StreamSource(f"rtsp://admin:{PASSWORD}@10.0.0.5:554/Streaming/101"),
    }
    fields.update(overrides)
    return Camera(**fields)  # type: ignore[arg-type]


# --- stream sources ----------------------------------------------------------------------


def test_credentials_are_split_out_of_the_urls() -> None:
    source = StreamSource(
        "rtsp://admin:p%40ss%3Aw0rd@10.0.0.5:554/Streaming/101",
        sub_url="rtsp://admin:p%40ss%3Aw0rd@10.0.0.5:554/Streaming/102",
    )
    assert source.main_url == "rtsp://10.0.0.5:554/Streaming/101"
    assert source.sub_url == "rtsp://10.0.0.5:554/Streaming/102"
    assert (source.username, source.password) == ("admin", "p@ss:w0rd")
    # Put back percent-encoded by the RTSP adapter, as FFmpeg expects.
    assert with_credentials(source.main_url, source.username, source.password) == (
        "rtsp://admin:p%40ss%3Aw0rd@10.0.0.5:554/Streaming/101"
    )


def test_unencoded_at_sign_in_the_password() -> None:
    source = StreamSource("rtsp://admin:p@ss@camera.local/live")
    assert (source.main_url, source.username, source.password) == (
        "rtsp://camera.local/live",
        "admin",
        "p@ss",
    )


def test_explicit_credentials_and_no_credentials() -> None:
    source = StreamSource("rtsp://10.0.0.5/live", username="admin", password=PASSWORD)
    assert (
        with_credentials(source.main_url, source.username, source.password)
        == f"rtsp://admin:{PASSWORD}@10.0.0.5/live"
    )
    anonymous = StreamSource("rtsps://10.0.0.5/live", username="", password="")
    assert (anonymous.username, anonymous.password) == (None, None)
    assert (
        with_credentials(anonymous.main_url, anonymous.username, anonymous.password)
        == "rtsps://10.0.0.5/live"
    )
    same = StreamSource(f"rtsp://admin:{PASSWORD}@h/live", username="admin", password=PASSWORD)
    assert same.password == PASSWORD


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"main_url": f"rtsp://admin:{PASSWORD}@h/a", "sub_url": "rtsp://other:x@h/b"}, "source"),
        ({"main_url": f"rtsp://admin:{PASSWORD}@h/a", "password": "different"}, "source"),
        ({"main_url": f"rtsp://:{PASSWORD}@h/a"}, "username"),
        ({"main_url": "rtsp://h/a", "password": PASSWORD}, "username"),
        ({"main_url": f"http://admin:{PASSWORD}@h/a"}, "main_url"),
        ({"main_url": f"admin:{PASSWORD}@h/a"}, "main_url"),
        ({"main_url": f"rtsp://admin:{PASSWORD}@h:99999/a"}, "main_url"),
        ({"main_url": f"rtsp://admin:{PASSWORD}@/a"}, "main_url"),
        ({"main_url": "rtsp://h/a", "sub_url": f"ftp://admin:{PASSWORD}@h/b"}, "sub_url"),
    ],
)
def test_invalid_sources_never_echo_credentials(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        StreamSource(**kwargs)
    assert caught.value.field == field
    assert PASSWORD not in str(caught.value)
    assert "admin" not in str(caught.value)


def test_password_is_masked_in_repr_and_public_view() -> None:
    camera = make_camera()
    for text in (repr(camera.source), str(camera.source), repr(camera), str(camera)):
        assert PASSWORD not in text
    assert "password='***'" in repr(camera.source)
    assert camera.source.public() == {
        "main_url": "rtsp://10.0.0.5:554/Streaming/101",
        "sub_url": None,
        "has_credentials": True,
    }


def test_passwords_are_masked_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    camera = make_camera()
    logger = logging.getLogger("test.catalog")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.catalog"):
        logger.info("opening with %s", camera.source.password)
    assert PASSWORD not in caplog.text


# --- cameras and regions -----------------------------------------------------------------


def test_camera_defaults_and_normalisation() -> None:
    camera = make_camera(name="  北门  ", tags=["gate", " gate", "night"])
    assert camera.name == "北门"
    assert camera.tags == ("gate", "night")
    assert camera.recording is RecordingPolicy.OFF
    assert camera.created_at.tzinfo is not None
    assert camera.device.kind == "IP camera"
    assert camera.camera_class.label == "一类"
    assert [c.label for c in CameraClass] == ["一类", "二类", "三类"]


def test_replace_revalidates_and_coerces_strings() -> None:
    camera = make_camera()
    changed = replace(camera, camera_class="B", sector="education")  # type: ignore[arg-type]
    assert changed.camera_class is CameraClass.B
    assert changed.sector is Sector.EDUCATION
    with pytest.raises(InvalidInput) as caught:
        replace(camera, camera_class="D")  # type: ignore[arg-type]
    assert caught.value.field == "camera_class"
    assert "A, B, C" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"id": "3402020000132000001"}, InvalidDeviceCode, "id"),
        ({"id": "34020200002000000001"}, InvalidDeviceCode, "id"),  # a platform server
        ({"region": "340200"}, InvalidRegionCode, "region"),
        ({"name": "  "}, InvalidInput, "name"),
        ({"owner_unit": ""}, InvalidInput, "owner_unit"),
        ({"lat": 31.3}, InvalidInput, "lat"),
        ({"lat": 91.0, "lon": 118.4}, InvalidInput, "lat"),
        ({"lat": 31.3, "lon": float("nan")}, InvalidInput, "lon"),
        ({"tags": ["ok", " "]}, InvalidInput, "tags"),
        ({"sector": "farming"}, InvalidInput, "sector"),
        ({"recording": "sometimes"}, InvalidInput, "recording"),
    ],
)
def test_invalid_cameras(overrides: dict[str, object], error: type[Exception], field: str) -> None:
    with pytest.raises(error) as caught:
        make_camera(**overrides)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.field == field


def test_non_front_end_id_names_the_kind() -> None:
    with pytest.raises(InvalidDeviceCode, match="centre signalling server, not a front-end"):
        make_camera(id="34020200002000000001")


def test_region_level_and_parent_follow_from_the_code() -> None:
    village = Region("340202001001", " 北门村 ")
    assert (village.level, village.parent, village.name) == (
        RegionLevel.VILLAGE,
        "340202001",
        "北门村",
    )
    with pytest.raises(InvalidRegionCode) as caught:
        Region("340200", "芜湖市")
    assert caught.value.field == "code"
