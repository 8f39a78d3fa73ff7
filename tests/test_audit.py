"""The audit log: every audited action writes its entry; the hash chain catches edits."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.audit import Action, AuditQuery
from gateway.auth.db import FILE_NAME
from gateway.auth.principals import Role, Scope
from tests.inprocess import gateway_client, gateway_of

SHARPEYES = Path(sys.executable).with_name("sharpeyes")
DEMO = "11010500001320000001"
NEW = "11010500001320000005"
PASSWORD = "Zebra-Lamp-7731"


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    text = "hub: {probe_interval: 3600, idle_stop_after: 5}\n"
    async with gateway_client(tmp_path / "data", text) as client:
        yield client


async def actions(http: httpx.AsyncClient) -> list[tuple[str, str | None, dict[str, object]]]:
    entries, _ = await gateway_of(http).audit.query(AuditQuery(limit=10_000))
    return [(e.action, e.camera, e.detail) for e in entries]


async def test_every_audited_action_writes_its_entry(http: httpx.AsyncClient) -> None:
    gateway = gateway_of(http)
    camera = {
        "id": NEW,
        "name": "gate",
        "class": "B",
        "region": "110105",
        "owner_unit": "t",
        "sector": "police",
        "source": {"main_url": "rtsp://10.0.0.5/live", "username": "u", "password": PASSWORD},
    }
    steps = [
        ("POST", "/api/v1/regions", {"code": "110105001", "name": "town"}, 201),
        ("PATCH", "/api/v1/regions/110105001", {"name": "town 2"}, 200),
        ("DELETE", "/api/v1/regions/110105001", None, 204),
        ("POST", "/api/v1/cameras", camera, 201),
        ("PATCH", f"/api/v1/cameras/{NEW}", {"name": "gate 2"}, 200),
        ("GET", f"/api/v1/cameras/{DEMO}/snapshot.jpg", None, 200),
        ("GET", f"/api/v1/cameras/{DEMO}/recordings.m3u8?start=0&end=10", None, 404),
        ("GET", f"/api/v1/cameras/{DEMO}/export.mp4?start=0&end=10", None, 404),
        ("POST", f"/api/v1/cameras/{DEMO}/ptz/home", None, 409),
        ("DELETE", f"/api/v1/cameras/{NEW}", None, 204),
        (
            "POST",
            "/api/v1/users",
            {"username": "eve", "role": "viewer", "password": "a long passphrase"},
            201,
        ),
    ]
    for method, path, body, expected in steps:
        response = await http.request(method, path, json=body)
        assert response.status_code == expected, (path, response.text)
    user_id = (await http.get("/api/v1/users")).json()[-1]["id"]
    assert (await http.patch(f"/api/v1/users/{user_id}", json={"disabled": True})).is_success
    assert (await http.patch(f"/api/v1/users/{user_id}", json={"disabled": False})).is_success
    token = await http.post("/api/v1/tokens", json={"name": "eve's", "user_id": user_id})
    assert token.status_code == 201
    assert (await http.delete(f"/api/v1/tokens/{token.json()['id']}")).is_success
    viewer = {"Authorization": f"Bearer {token.json()['token']}"}
    assert (await http.get("/api/v1/cameras", headers=viewer)).status_code == 401  # revoked
    fresh = await http.post("/api/v1/tokens", json={"name": "eve 2", "user_id": user_id})
    viewer = {"Authorization": f"Bearer {fresh.json()['token']}"}
    assert (await http.get("/api/v1/users", headers=viewer)).status_code == 403
    good = {"username": "eve", "password": "a long passphrase"}
    assert (await http.post("/api/v1/session", json=good, headers={})).status_code == 200
    bad = {"username": "eve", "password": "wrong"}
    assert (await http.post("/api/v1/session", json=bad, headers={})).status_code == 401
    assert (await http.delete(f"/api/v1/users/{user_id}")).status_code == 204
    assert (await http.get("/api/v1/audit")).status_code == 200

    written = await actions(http)
    kinds = [a for a, _, _ in written]
    expected = [
        Action.REGION_CREATE,
        Action.REGION_UPDATE,
        Action.REGION_DELETE,
        Action.CAMERA_CREATE,
        Action.CAMERA_UPDATE,
        Action.SNAPSHOT,
        Action.PLAYBACK,
        Action.EXPORT,
        Action.PTZ,
        Action.CAMERA_DELETE,
        Action.USER_CREATE,
        Action.USER_UPDATE,
        Action.USER_UPDATE,
        Action.TOKEN_CREATE,
        Action.TOKEN_REVOKE,
        Action.TOKEN_REJECTED,
        Action.TOKEN_CREATE,
        Action.ACCESS_DENIED,
        Action.LOGIN,
        Action.LOGIN_FAILED,
        Action.USER_DELETE,
        Action.AUDIT_READ,
    ]
    assert kinds == [a.value for a in expected]
    by_action = {a: (c, d) for a, c, d in written}
    assert by_action["export"] == (DEMO, {"start": "0", "end": "10"})
    assert by_action["ptz"] == (DEMO, {"command": "home"})
    assert by_action["camera_update"] == (NEW, {"changed": ["name"]})
    assert by_action["login_failed"][1] == {"username": "eve"}
    # Who, from where, when: on every row.
    entries, _ = await gateway.audit.query(AuditQuery(action="snapshot"))
    assert entries[0].actor == "admin" and entries[0].address == "127.0.0.1"
    assert entries[0].region == "110105" and entries[0].at.endswith("+00:00")
    rows, _ = await gateway.audit.verify()
    assert rows == len(written)


@dataclass
class FakeSession:
    id: str
    closed: bool = False


async def test_live_views_are_audited_with_duration_and_limited(http: httpx.AsyncClient) -> None:
    gateway = gateway_of(http)
    live = gateway.security.live
    user = await gateway.security.directory.create_user("op", Role.OPERATOR, Scope(), None, "test")
    principal = user.principal("token:9", "10.1.2.3")
    sessions = [FakeSession(f"session{n}") for n in range(live.limit + 1)]

    async def opener(n: int) -> tuple[FakeSession, str]:
        return sessions[n], "v=0"

    for n in range(live.limit):
        await live.start(principal, DEMO, "main", lambda n=n: opener(n))  # type: ignore[misc]
    with pytest.raises(Exception, match="live views at once") as refused:
        await live.start(principal, DEMO, "main", lambda: opener(live.limit))
    assert getattr(refused.value, "status", None) == 429
    sessions[0].closed = True
    await live._sweep(final=False)
    written = await actions(http)
    starts = [d for a, c, d in written if a == "live_start" and c == DEMO]
    stops = [d for a, c, d in written if a == "live_stop"]
    assert len(starts) == live.limit and starts[0] == {"stream": "main", "session": "sessio"}
    assert len(stops) == 1 and isinstance(stops[0]["seconds"], float)
    await live.start(principal, DEMO, "main", lambda: opener(live.limit))  # a slot came free


async def test_csv_export_and_scope_of_readers(http: httpx.AsyncClient) -> None:
    gateway = gateway_of(http)
    assert (await http.get(f"/api/v1/cameras/{DEMO}/snapshot.jpg")).status_code == 200
    directory = gateway.security.directory
    police = await directory.create_user("p", Role.POLICE, Scope(regions=("110106",)), None, "t")
    token, _ = await directory.create_token(police.id, "t", None)
    theirs = {"Authorization": f"Bearer {token}"}
    page = (await http.get("/api/v1/audit", headers=theirs)).json()
    assert page["items"] == [] or all(i["region"] == "110106" for i in page["items"])

    response = await http.get("/api/v1/audit", params={"format": "csv", "action": "snapshot"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["seq", "at", "actor"] and rows[1][6] == "snapshot"
    assert "attachment" in response.headers["content-disposition"]


def test_editing_a_row_breaks_verify(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def sharpeyes(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SHARPEYES), *args, "--data", str(data)], capture_output=True, text=True, timeout=60
        )

    for n in range(4):
        made = sharpeyes("user", "add", f"user{n}", "--role", "viewer")
        assert made.returncode == 0, made.stderr
    ok = sharpeyes("audit", "verify")
    assert ok.returncode == 0 and "intact: 4 row(s)" in ok.stdout, ok.stderr

    db = sqlite3.connect(data / FILE_NAME)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 2")
    # Someone with the file can drop the guard; the chain still tells.
    db.executescript(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
        "UPDATE audit SET actor = 'nobody' WHERE seq = 2;"
    )
    db.commit()
    broken = sharpeyes("audit", "verify")
    assert broken.returncode == 1 and "audit row 2" in broken.stderr, broken.stderr

    original = db.execute("SELECT actor FROM audit WHERE seq = 1").fetchone()[0]
    db.execute("UPDATE audit SET actor = ? WHERE seq = 2", (original,))
    db.commit()
    assert sharpeyes("audit", "verify").returncode == 0  # restored: whole again
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    missing = sharpeyes("audit", "verify")
    assert missing.returncode == 1 and "audit row 3: missing" in missing.stderr
    db.execute("DELETE FROM audit WHERE seq >= 3")  # cut the tail instead
    db.commit()
    db.close()
    tail = sharpeyes("audit", "verify")
    assert tail.returncode == 1 and "audit row 3: missing" in tail.stderr, tail.stderr
