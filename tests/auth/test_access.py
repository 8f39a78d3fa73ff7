"""Principals, sessions, limits and secrets at rest (gateway/auth, gateway/secretbox.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import av.logging
import httpx
import pytest

from adapters.rtsp import RtspSource
from gateway import errors
from gateway import settings as config
from gateway.auth.db import FILE_NAME
from gateway.auth.principals import ADMIN_TOKEN_ENV, Role, Scope
from gateway.catalog.models import Camera, Region, StreamSource
from gateway.catalog.store import CatalogStore
from gateway.redact import redact
from gateway.secretbox import KEY_ENV, SecretBox, SecretKeyError
from tests.credentials import ADMIN_HEADERS, leaked
from tests.inprocess import gateway_client, gateway_of

Factory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway_app(tmp_path: Path) -> Factory:
    @asynccontextmanager
    async def make(
        extra: str = "", headers: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        text = "demo: {enabled: false}\n" + extra
        async with gateway_client(tmp_path / "data", text, headers=headers) as http:
            yield http

    return make


# --- first start -----------------------------------------------------------------------------


async def test_first_start_prints_a_one_time_token_once(
    gateway_app: Factory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV)
    async with gateway_app() as http:
        printed = capsys.readouterr().out
        token = next(w for w in printed.split() if w.startswith("se_"))
        assert (await http.get("/api/v1/cameras")).status_code == 401  # no default access
        me = await http.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
    async with gateway_app():
        assert "se_" not in capsys.readouterr().out  # never again
    raw = (Path(str(http.gateway.settings.data_dir)) / FILE_NAME).read_bytes()  # type: ignore[attr-defined]
    assert token.encode() not in raw  # only its hash is kept
    assert hashlib.sha256(token.encode()).hexdigest().encode() in raw


async def test_a_weak_bootstrap_token_is_refused(
    gateway_app: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "short")
    with pytest.raises(errors.InvalidInput, match="at least 32"):
        async with gateway_app():
            pass


def test_the_gateway_binds_loopback_by_default() -> None:
    assert config.parse("", environ={}).server.host == "127.0.0.1"


# --- tokens ----------------------------------------------------------------------------------


async def test_tokens_expire_and_are_revocable(gateway_app: Factory) -> None:
    async with gateway_app(headers=ADMIN_HEADERS) as http:
        directory = gateway_of(http).security.directory
        user = await directory.create_user("svc", Role.VIEWER, Scope(), None, "t")
        expired, _ = await directory.create_token(user.id, "old", time.time() - 1)
        live, info = await directory.create_token(user.id, "new", time.time() + 60)
        as_ = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
        assert (await http.get("/api/v1/session", headers=as_(expired))).status_code == 401
        assert (await http.get("/api/v1/session", headers=as_(live))).status_code == 200
        listed = (await http.get("/api/v1/tokens")).json()
        assert all("token" not in t for t in listed)  # shown once, at creation only
        assert (await http.delete(f"/api/v1/tokens/{info.id}")).status_code == 200
        assert (await http.get("/api/v1/session", headers=as_(live))).status_code == 401
        too_long = await http.post("/api/v1/tokens", json={"name": "x", "expires_days": 10_000})
        assert too_long.status_code == 422
        unauthenticated = await http.get("/api/v1/session", headers={"Authorization": "Basic x"})
        assert unauthenticated.headers["www-authenticate"].startswith("Bearer")


async def test_a_scoped_admin_cannot_grant_more_than_it_has(gateway_app: Factory) -> None:
    async with gateway_app(headers=ADMIN_HEADERS) as http:
        directory = gateway_of(http).security.directory
        county = await directory.create_user("c", Role.ADMIN, Scope(regions=("110105",)), None, "t")
        token, _ = await directory.create_token(county.id, "t", None)
        theirs = {"Authorization": f"Bearer {token}"}
        wide = {"username": "w", "role": "operator", "regions": None}
        refused = await http.post("/api/v1/users", json=wide, headers=theirs)
        assert refused.status_code == 403 and refused.json()["code"] == "scope_escalation"
        narrow = {"username": "n", "role": "operator", "regions": ["110105001"]}
        assert (await http.post("/api/v1/users", json=narrow, headers=theirs)).status_code == 201
        # The unrestricted bootstrap admin is invisible to it, and cannot be removed at all.
        assert (await http.get("/api/v1/users/1", headers=theirs)).status_code == 404
        last = await http.patch("/api/v1/users/1", json={"disabled": True})
        assert last.status_code == 409


# --- web sessions ----------------------------------------------------------------------------


async def test_login_session_cookie_and_cross_site_refusal(gateway_app: Factory) -> None:
    async with gateway_app() as http:
        directory = gateway_of(http).security.directory
        await directory.create_user("ops", Role.OPERATOR, Scope(), "Sup3r-Secret-Phrase", "t")
        login = await http.post(
            "/api/v1/session", json={"username": "ops", "password": "Sup3r-Secret-Phrase"}
        )
        assert login.status_code == 200 and login.json()["role"] == "operator"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert (await http.get("/api/v1/cameras")).status_code == 200  # the cookie works
        # An unsafe request with the cookie from another site is refused...
        cross = await http.delete("/api/v1/session", headers={"Origin": "http://evil.test"})
        assert cross.status_code == 403 and cross.json()["code"] == "cross_site_request"
        fetch_meta = await http.delete("/api/v1/session", headers={"Sec-Fetch-Site": "cross-site"})
        assert fetch_meta.status_code == 403
        # ... and from the page itself accepted.
        own = await http.delete("/api/v1/session", headers={"Origin": "http://gw"})
        assert own.status_code == 204
        assert (await http.get("/api/v1/cameras")).status_code == 401  # signed out
        page = await http.get("/login")
        assert page.status_code == 200 and "/api/v1/session" in page.text
        assert page.headers["x-frame-options"] == "DENY"


async def test_failed_logins_slow_down_then_lock_out(gateway_app: Factory) -> None:
    async with gateway_app("security: {login_failures: 2}\n") as http:
        directory = gateway_of(http).security.directory
        await directory.create_user("ops", Role.OPERATOR, Scope(), "Sup3r-Secret-Phrase", "t")
        wrong = {"username": "ops", "password": "guess-guess"}
        started = time.monotonic()
        for _ in range(2):
            assert (await http.post("/api/v1/session", json=wrong)).status_code == 401
        assert time.monotonic() - started >= 0.7  # 0.25 s, then 0.5 s
        locked = await http.post(
            "/api/v1/session", json={"username": "ops", "password": "Sup3r-Secret-Phrase"}
        )
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        # The address is locked for tokens too; a fresh gateway: bad tokens alone.
        bad = await http.get("/api/v1/cameras", headers={"Authorization": "Bearer se_nope"})
        assert bad.status_code == 429
    async with gateway_app("security: {login_failures: 2}\n") as http:
        for _ in range(2):
            bad = await http.get("/api/v1/cameras", headers={"Authorization": "Bearer se_nope"})
            assert bad.status_code == 401
        bad = await http.get("/api/v1/cameras", headers={"Authorization": "Bearer se_nope"})
        assert bad.status_code == 429


async def test_request_bodies_are_capped(gateway_app: Factory) -> None:
    async with gateway_app("security: {max_body_bytes: 1000}\n", headers=ADMIN_HEADERS) as http:
        big = await http.post("/api/v1/regions", content=b"x" * 5000)
        assert big.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(10):
                yield b"y" * 500

        streamed = await http.post("/api/v1/regions", content=chunks())
        assert streamed.status_code == 413


async def test_request_rate_per_principal(gateway_app: Factory) -> None:
    extra = "security: {requests_per_second: 1, request_burst: 3}\n"
    async with gateway_app(extra, headers=ADMIN_HEADERS) as http:
        codes = [(await http.get("/api/v1/session")).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429


# --- secrets at rest and in messages -----------------------------------------------------------

CAMERA_ID = "11010500001320000003"
PASSWORD = "Plain-Text-Pa55"


def _camera() -> Camera:
    return Camera(
        id=CAMERA_ID,
        name="c",
        camera_class="A",  # type: ignore[arg-type]
        region="110105",
        owner_unit="t",
        sector="police",  # type: ignore[arg-type]
        source=StreamSource("rtsp://10.0.0.5/live", username="admin", password=PASSWORD),
    )


async def test_plaintext_passwords_of_older_releases_are_sealed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    async with await CatalogStore.open(path) as store:
        await store.create_region(Region(code="110105", name="c"))
        await store.create_camera(_camera())
    raw = sqlite3.connect(path)  # as a release before sealing left it
    raw.execute("UPDATE cameras SET password = ?, secret = NULL", (PASSWORD,))
    raw.commit()
    raw.close()
    async with await CatalogStore.open(path) as store:
        assert (await store.get_camera(CAMERA_ID)).source.password == PASSWORD
    raw = sqlite3.connect(path)
    password, secret = raw.execute("SELECT password, secret FROM cameras").fetchone()
    raw.close()
    assert password is None and secret.startswith("v1:")
    assert PASSWORD.encode() not in path.read_bytes()


async def test_the_key_from_the_environment_and_a_wrong_key(tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    box = SecretBox.load(tmp_path, {KEY_ENV: key})
    assert not (tmp_path / "secret.key").exists()  # the environment's key: no file
    path = tmp_path / "catalog.sqlite3"
    async with await CatalogStore.open(path, box) as store:
        await store.create_region(Region(code="110105", name="c"))
        await store.create_camera(_camera())
    other = SecretBox.load(tmp_path, {KEY_ENV: base64.urlsafe_b64encode(os.urandom(32)).decode()})
    with pytest.raises(SecretKeyError, match="not the one it was stored with"):
        await CatalogStore.open(path, other)
    # A sealed value moved to another row does not decrypt there.
    sealed = box.seal(PASSWORD, CAMERA_ID)
    with pytest.raises(SecretKeyError):
        box.open(sealed, "11010500001320000004")


def test_ffmpeg_errors_and_logs_do_not_echo_the_password() -> None:
    assert av.logging.get_level() is None  # FFmpeg's own log stays off (PyAV's default)
    source = RtspSource("rtsp://127.0.0.1:9/live", "admin", "P@ss:w0rd/x", open_timeout=2)
    with pytest.raises(errors.SourceError) as caught:
        source.open()
    text = str(caught.value) + repr(caught.value)
    assert "P@ss" not in text and "P%40ss" not in text and "w0rd" not in text


async def test_responses_never_carry_camera_passwords(gateway_app: Factory) -> None:
    async with gateway_app("security: {allow_loopback_cameras: true}\n", ADMIN_HEADERS) as http:
        body = {
            "id": CAMERA_ID,
            "name": "c",
            "class": "A",
            "region": "110105",
            "owner_unit": "t",
            "sector": "police",
            "source": {"main_url": f"rtsp://admin:{PASSWORD}@10.0.0.5/live"},
        }
        assert (await http.post("/api/v1/regions", json={"code": "110105", "name": "c"})).is_success
        created = await http.post("/api/v1/cameras", json=body)
        assert created.status_code == 201 and PASSWORD not in created.text
        assert PASSWORD not in json.dumps((await http.get("/api/v1/cameras")).json())


def test_the_suite_leak_check_sees_registered_secrets() -> None:
    """What tests/conftest.py's autouse fixture relies on."""
    redact.add("leak-check-canary-7731")
    texts = [("clean", b"nothing here"), ("dirty", b"x leak-check-canary-7731 y")]
    assert leaked(redact.secrets, texts) == ["dirty"]
