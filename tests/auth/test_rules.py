"""Every route × every role × in and out of scope, generated from the app's own route list.

A route added without a line in gateway/auth/rules.py fails ``test_every_route_has_a_rule``
(and is refused with 403 at run time). For each role the app is started afresh with two
cameras — IN (class A, county 110105, the role's scope) and OUT (class B, county 110106) —
and every route is called with the role's token:

* a public route passes;
* without credentials → 401;
* a role without the permission → 403, whatever the object;
* an object out of scope → 404 exactly as for an absent one;
* in scope → anything but 401, 403 or that 404 (the handler itself decides the rest).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount, Route

from gateway import settings as config
from gateway.app import Gateway, create_app
from gateway.auth.principals import Role, Scope
from gateway.auth.rules import ROLE_PERMISSIONS, RULES, By, Rule, rule_for
from tests.credentials import ADMIN_HEADERS

IN = "11010500001320000001"  # the demo camera: class A in 110105
OUT = "11010600001320000002"  # class B in 110106
CONFIG = f"""
hub: {{probe_interval: 3600, idle_stop_after: 30}}
onvif: {{discovery_timeout: 0.2}}
regions: [{{code: "110106", name: Other county}}]
cameras:
  - {{id: "{OUT}", name: other, class: B, region: "110106", owner_unit: t, sector: police,
     source: {{main_url: "demo://out?width=64&height=64&fps=5"}}}}
"""
# Values for path parameters other than the scoped objects.
FILLERS = {
    "session_id": "nosuchsession",
    "segment_id": "1",
    "hold_id": "1",
    "token": "preset1",
    "user_id": "999",
    "token_id": "999",
    "event_id": "nosuchevent",
    "device_id": "34150200001340000001",
    "device": "34150200001340000001",
}

# Responses that never end (Server-Sent Events): an allowed call would wait forever here;
# their per-event scope is tested over real HTTP in tests/alarms/test_api.py.
ENDLESS = {"/api/v1/events/stream"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    rule: Rule

    def url(self, camera: str, region: str) -> str:
        values = {**FILLERS, "camera_id": camera, "code": region}
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m[1]], self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route the app serves, included routers too."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's lazily included routers
            for ctx in contexts():
                for method in ctx.methods or ():
                    yield method, ctx.original_route.path
        elif isinstance(route, Mount):
            yield "GET", route.path
        elif isinstance(route, Route):
            for method in route.methods or ():
                yield method, route.path


def _app() -> FastAPI:
    settings = config.parse(CONFIG, environ={})
    return create_app(settings)


def endpoints() -> list[Endpoint]:
    found = []
    for method, path in sorted(set(app_routes(_app()))):
        rule = rule_for(method, path)
        if rule is not None and method != "HEAD":
            found.append(Endpoint(method, path, rule))
    # Destructive calls last, deleting the IN camera very last: the rest still needs it.
    return sorted(
        found, key=lambda e: (e.method == "DELETE", e.path == "/api/v1/cameras/{camera_id}")
    )


def test_every_route_has_a_rule() -> None:
    missing = [f"{m} {p}" for m, p in app_routes(_app()) if rule_for(m, p) is None]
    assert not missing, f"routes without an access rule in gateway/auth/rules.py: {missing}"


def test_no_stale_rules() -> None:
    served = set(app_routes(_app()))
    stale = [f"{m} {p}" for (m, p) in RULES if (m, p) not in served]
    assert not stale, f"rules for routes that do not exist: {stale}"


async def test_a_route_without_a_rule_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail closed: 403 and a loud log line, not a 500 and not a pass."""
    settings = config.parse("demo: {enabled: false}", environ={})
    settings.data_dir = tmp_path / "data"
    app = create_app(settings)
    app.add_api_route("/api/v1/forgotten", lambda: {"secret": "data"}, methods=["GET"])
    async with app.router.lifespan_context(app), _client(app, ADMIN_HEADERS) as http:
        response = await http.get("/api/v1/forgotten")
    assert response.status_code == 403 and response.json()["code"] == "no_access_rule"
    assert "ACCESS RULE MISSING: GET /api/v1/forgotten" in caplog.text


def _client(app: FastAPI, headers: dict[str, str]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers)


PRINCIPALS = [(role, Scope(regions=("110105",))) for role in Role] + [
    (Role.OPERATOR, Scope(classes=frozenset({"B"})))
]  # type: ignore[arg-type]


@pytest.fixture(
    params=PRINCIPALS, ids=lambda p: f"{p[0]}-{'+'.join(p[1].regions or p[1].classes or ())}"
)
async def as_role(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Role, Scope, httpx.AsyncClient, httpx.AsyncClient]]:
    role, scope = request.param
    settings = config.parse(CONFIG, environ={})
    settings.data_dir = tmp_path / "data"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        gateway: Gateway = app.state.gateway
        directory = gateway.security.directory
        user = await directory.create_user(f"u-{role}", role, scope, None, "test")
        token, _ = await directory.create_token(user.id, "test", None)
        async with (
            _client(app, {"Authorization": f"Bearer {token}"}) as http,
            _client(app, {}) as anonymous,
        ):
            yield role, scope, http, anonymous


async def test_route_role_scope_matrix(
    as_role: tuple[Role, Scope, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    role, scope, http, anonymous = as_role
    in_scope = scope.regions is not None  # the class-B operator sees OUT's class, not IN's
    mine, theirs = (IN, OUT) if in_scope else (OUT, IN)
    my_region, their_region = ("110105", "110106") if in_scope else ("110106", "110105")
    problems: list[str] = []

    async def call(
        client: httpx.AsyncClient, e: Endpoint, camera: str, region: str
    ) -> httpx.Response:
        kwargs: dict[str, object] = {}
        if e.method in ("POST", "PATCH", "PUT"):
            kwargs["json"] = {}
        return await client.request(e.method, e.url(camera, region), **kwargs)

    for e in endpoints():
        rule = e.rule
        if rule.public:
            r = await call(anonymous, e, mine, my_region)
            if r.status_code in (401, 403):
                problems.append(f"{e}: public but {r.status_code}")
            continue
        r = await call(anonymous, e, mine, my_region)
        if r.status_code != 401:
            problems.append(f"{e}: anonymous got {r.status_code}, not 401")
        allowed = rule.permission in ROLE_PERMISSIONS[role]
        scoped_object = rule.by is By.CAMERA or (rule.by is By.REGION and scope.regions is not None)
        if scoped_object and allowed:
            r = await call(http, e, theirs, their_region)
            absent = r.status_code == 404 and "does not exist" in r.json()["message"]
            if not absent:
                problems.append(f"{e}: out of scope got {r.status_code} {r.text[:80]}")
        if allowed and e.path in ENDLESS:
            continue  # ASGITransport waits for the end of a response; see ENDLESS
        r = await call(http, e, mine, my_region)
        if not allowed:
            if r.status_code != 403:
                problems.append(f"{e}: {role} lacks {rule.permission} but got {r.status_code}")
            continue
        scope_404 = r.status_code == 404 and re.search(
            rf"(camera {mine}|region {my_region}) does not exist", r.text
        )
        if r.status_code in (401, 403) or scope_404:
            problems.append(f"{e}: {role} in scope got {r.status_code} {r.text[:80]}")
    assert not problems, "\n".join(problems)
