"""THE access table: every route of the app → the permission it needs and how it is scoped.

One dependency (:func:`enforce`, installed app-wide by ``create_app``) looks up the matched
route's ``(method, path template)`` here on every request:

* no rule → 403 and a loud log line: a new endpoint is closed until someone decides who may
  use it (and ``tests/auth/test_rules.py`` fails for it);
* public rules (``permission=None``) pass without credentials;
* otherwise the caller must authenticate (401), its role must hold the permission (403),
  and the object named in the path must lie in its scope — ``{camera_id}`` by the camera's
  region and class, ``{code}`` by the region — or the answer is 404, exactly as for an
  object that does not exist, so nothing can be enumerated;
* ``audit`` rules append an audit entry once access is granted, with the listed path and
  query parameters as detail (playback range, export range, PTZ command).

Adding a route: add a line to ``RULES`` below with the same method and path template as the
decorator (prefix included). List endpoints must also filter to ``principal.scope``
(``Scope.allows``, or ``CatalogStore.list_cameras(within_regions=, within_classes=)``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from gateway.audit import Action
from gateway.auth.principals import Placed, Principal, Role, anonymous
from gateway.catalog.codes import parse_device_code, parse_region_code
from gateway.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)


class Permission(StrEnum):
    CATALOG_READ = "catalog.read"  # cameras, regions, status, ONVIF facts
    CATALOG_WRITE = "catalog.write"  # add, change, remove cameras (also through ONVIF)
    REGIONS_WRITE = "regions.write"  # the region tree
    DISCOVER = "devices.discover"  # ONVIF discovery: probes the network
    LIVE = "video.live"  # WHEP live view, snapshots
    PLAYBACK = "video.playback"  # recorded timeline, HLS, segments, holds (read)
    EXPORT = "video.export"  # MP4 export of a range
    HOLDS = "recordings.hold"  # evidence holds: create, release
    PTZ = "ptz.control"
    EVENTS = "events.read"  # alarms, diagnosis events
    SYSTEM = "system.read"  # relay and recorder status, Prometheus metrics
    AUDIT = "audit.read"
    USERS = "users.manage"  # users and tokens
    SELF = "self"  # one's own session: who am I, sign out


_P = Permission
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({_P.CATALOG_READ, _P.LIVE, _P.PLAYBACK, _P.PTZ, _P.EVENTS, _P.SELF}),
    Role.POLICE: frozenset(
        {
            _P.CATALOG_READ,
            _P.LIVE,
            _P.PLAYBACK,
            _P.EXPORT,
            _P.HOLDS,
            _P.EVENTS,
            _P.AUDIT,
            _P.SELF,
        }
    ),
    Role.INTEGRATOR: frozenset(
        {_P.CATALOG_READ, _P.CATALOG_WRITE, _P.DISCOVER, _P.EVENTS, _P.SELF}
    ),
    Role.VIEWER: frozenset({_P.CATALOG_READ, _P.LIVE, _P.SELF}),
}


class By(StrEnum):
    """What in the path names the object whose scope is checked."""

    NOTHING = ""
    CAMERA = "camera_id"
    REGION = "code"


@dataclass(frozen=True, slots=True)
class Rule:
    permission: Permission | None  # None: public
    by: By = By.NOTHING
    audit: Action | None = None
    detail: tuple[str, ...] = ()  # path or query parameters recorded with the entry
    note: Mapping[str, str] = field(default_factory=dict)  # fixed detail (PTZ command)

    @property
    def public(self) -> bool:
        return self.permission is None


PUBLIC = Rule(None)
CAM = "/api/v1/cameras/{camera_id}"


def _ptz(command: str) -> Rule:
    return Rule(_P.PTZ, By.CAMERA, Action.PTZ, note={"command": command})


RULES: Mapping[tuple[str, str], Rule] = {
    # --- the program's own pages and documents (no data in them) --------------------------
    ("GET", "/"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,  # liveness for load balancers: counts only
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/wall"): PUBLIC,  # static files of the video wall; its data needs a login
    ("GET", "/metrics"): Rule(_P.SYSTEM),
    # --- sessions, users, tokens, audit ---------------------------------------------------
    ("POST", "/api/v1/session"): PUBLIC,  # the login itself (rate-limited)
    ("GET", "/api/v1/session"): Rule(_P.SELF),
    ("DELETE", "/api/v1/session"): Rule(_P.SELF),
    ("GET", "/api/v1/users"): Rule(_P.USERS),
    ("POST", "/api/v1/users"): Rule(_P.USERS),
    ("GET", "/api/v1/users/{user_id}"): Rule(_P.USERS),
    ("PATCH", "/api/v1/users/{user_id}"): Rule(_P.USERS),
    ("DELETE", "/api/v1/users/{user_id}"): Rule(_P.USERS),
    ("GET", "/api/v1/tokens"): Rule(_P.USERS),
    ("POST", "/api/v1/tokens"): Rule(_P.USERS),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(_P.USERS),
    ("GET", "/api/v1/audit"): Rule(_P.AUDIT, audit=Action.AUDIT_READ),
    # --- catalog ----------------------------------------------------------------------------
    ("GET", "/api/v1/cameras"): Rule(_P.CATALOG_READ),  # filtered to scope in the handler
    ("POST", "/api/v1/cameras"): Rule(_P.CATALOG_WRITE),  # body checked against scope
    ("GET", CAM): Rule(_P.CATALOG_READ, By.CAMERA),
    ("PATCH", CAM): Rule(_P.CATALOG_WRITE, By.CAMERA),
    ("DELETE", CAM): Rule(_P.CATALOG_WRITE, By.CAMERA),
    ("GET", CAM + "/snapshot.jpg"): Rule(_P.LIVE, By.CAMERA, Action.SNAPSHOT, ("stream",)),
    ("GET", "/api/v1/regions"): Rule(_P.CATALOG_READ),  # filtered to scope in the handler
    ("POST", "/api/v1/regions"): Rule(_P.REGIONS_WRITE),  # parent checked in the handler
    ("PATCH", "/api/v1/regions/{code}"): Rule(_P.REGIONS_WRITE, By.REGION),
    ("DELETE", "/api/v1/regions/{code}"): Rule(_P.REGIONS_WRITE, By.REGION),
    # --- live (gateway/api/live.py; start/stop audited there, with the duration) -------------
    ("POST", CAM + "/whep"): Rule(_P.LIVE, By.CAMERA),
    ("DELETE", CAM + "/whep/{session_id}"): Rule(_P.LIVE, By.CAMERA),
    ("GET", "/api/v1/relay"): Rule(_P.SYSTEM),
    # --- recordings (gateway/api/recordings.py) ---------------------------------------------
    ("GET", CAM + "/recordings"): Rule(_P.PLAYBACK, By.CAMERA),
    ("GET", CAM + "/recordings.m3u8"): Rule(
        _P.PLAYBACK, By.CAMERA, Action.PLAYBACK, ("start", "end")
    ),
    ("GET", CAM + "/recordings/{segment_id}.mp4"): Rule(
        _P.PLAYBACK, By.CAMERA, Action.PLAYBACK, ("segment_id",)
    ),
    ("GET", CAM + "/export.mp4"): Rule(_P.EXPORT, By.CAMERA, Action.EXPORT, ("start", "end")),
    ("GET", CAM + "/holds"): Rule(_P.PLAYBACK, By.CAMERA),
    ("POST", CAM + "/holds"): Rule(_P.HOLDS, By.CAMERA, Action.HOLD_CREATE),
    ("DELETE", CAM + "/holds/{hold_id}"): Rule(
        _P.HOLDS, By.CAMERA, Action.HOLD_RELEASE, ("hold_id",)
    ),
    ("GET", "/api/v1/recorder"): Rule(_P.SYSTEM),
    # --- ONVIF (gateway/api/onvif.py) --------------------------------------------------------
    ("POST", "/api/v1/onvif/discover"): Rule(_P.DISCOVER),
    ("POST", "/api/v1/onvif/cameras"): Rule(_P.CATALOG_WRITE),  # body checked against scope
    ("GET", CAM + "/onvif"): Rule(_P.CATALOG_READ, By.CAMERA),
    ("POST", CAM + "/onvif/check"): Rule(_P.CATALOG_WRITE, By.CAMERA),
    # --- PTZ (gateway/api/ptz.py) -------------------------------------------------------------
    ("GET", CAM + "/ptz/status"): Rule(_P.PTZ, By.CAMERA),
    ("GET", CAM + "/ptz/presets"): Rule(_P.PTZ, By.CAMERA),
    ("POST", CAM + "/ptz/move"): _ptz("move"),
    ("POST", CAM + "/ptz/stop"): _ptz("stop"),
    ("POST", CAM + "/ptz/absolute"): _ptz("absolute"),
    ("POST", CAM + "/ptz/relative"): _ptz("relative"),
    ("POST", CAM + "/ptz/home"): _ptz("home"),
    ("POST", CAM + "/ptz/presets"): _ptz("set_preset"),
    ("POST", CAM + "/ptz/presets/{token}/goto"): Rule(
        _P.PTZ, By.CAMERA, Action.PTZ, ("token",), {"command": "goto_preset"}
    ),
    # --- events and video-quality diagnosis (gateway/api/events.py, diagnosis.py) -----------
    ("GET", "/api/v1/events"): Rule(_P.EVENTS),  # filtered to scope in the handler
    ("GET", "/api/v1/events/{event_id}"): Rule(_P.EVENTS),  # its camera checked in the handler
    ("GET", "/api/v1/events/{event_id}/thumbnail.jpg"): Rule(_P.EVENTS),  # likewise
    ("GET", "/api/v1/diagnosis"): Rule(_P.EVENTS),  # filtered to scope in the handler
    ("GET", CAM + "/diagnosis"): Rule(_P.EVENTS, By.CAMERA),
    ("POST", CAM + "/diagnosis/reference"): Rule(_P.CATALOG_WRITE, By.CAMERA),
    ("GET", CAM + "/diagnosis/reference.jpg"): Rule(
        _P.LIVE, By.CAMERA, Action.SNAPSHOT, note={"picture": "diagnosis reference"}
    ),
    ("GET", "/api/v1/events/stream"): Rule(_P.EVENTS),  # SSE, filtered to scope per event
    # --- school alarms (gateway/api/alarms.py). A device and its alarms are scoped by the
    # device's region, checked in the handlers (404 when out of scope); they audit too. ------
    ("POST", "/api/v1/alarms/{device}"): PUBLIC,  # the box: its signature is the credential
    ("GET", "/api/v1/alarms"): Rule(_P.EVENTS),
    ("GET", "/api/v1/alarms/{event_id}"): Rule(_P.EVENTS),
    # Integrators hold EVENTS too: the handlers let them handle test alarms only.
    ("POST", "/api/v1/alarms/{event_id}/ack"): Rule(_P.EVENTS),
    ("POST", "/api/v1/alarms/{event_id}/close"): Rule(_P.EVENTS),
    ("GET", "/api/v1/alarms/{event_id}/cameras/{camera_id}/snapshot.jpg"): Rule(
        _P.LIVE, By.CAMERA, Action.SNAPSHOT, ("event_id",), {"picture": "alarm linkage"}
    ),
    ("GET", "/api/v1/alarm-devices"): Rule(_P.CATALOG_READ),
    ("POST", "/api/v1/alarm-devices"): Rule(_P.CATALOG_WRITE),
    ("GET", "/api/v1/alarm-devices/{device_id}"): Rule(_P.CATALOG_READ),
    ("PATCH", "/api/v1/alarm-devices/{device_id}"): Rule(_P.CATALOG_WRITE),
    ("DELETE", "/api/v1/alarm-devices/{device_id}"): Rule(_P.CATALOG_WRITE),
    ("POST", "/api/v1/alarm-devices/{device_id}/test"): Rule(_P.CATALOG_WRITE),
}


def rule_for(method: str, path: str) -> Rule | None:
    rule = RULES.get((method, path))
    if rule is None and method == "HEAD":
        rule = RULES.get(("GET", path))
    return rule


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def enforce(request: Request) -> Principal:
    """The app-wide dependency: authenticate, authorise, scope, audit. Returns the caller."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    rule = rule_for(request.method, path) if path is not None else None
    if rule is None:
        log.error(
            "ACCESS RULE MISSING: %s %s has no entry in gateway/auth/rules.py RULES; "
            "every request to it is refused",
            request.method,
            path or request.url.path,
        )
        raise Forbidden("this endpoint has no access rule; refused", code="no_access_rule")
    client = request.client.host if request.client else "-"
    if rule.public:
        principal = anonymous(client)
        request.state.principal = principal
        return principal
    gateway = _gateway(request)
    security = gateway.security
    principal = await security.authenticate(request)
    assert rule.permission is not None
    if rule.permission not in ROLE_PERMISSIONS[principal.role]:
        await gateway.audit.record(
            principal,
            Action.ACCESS_DENIED,
            detail={"method": request.method, "route": path or ""},
            outcome="denied",
        )
        raise Forbidden(f"the {principal.role} role may not use this endpoint")
    camera_id = await _check_object(gateway, principal, rule, request)
    if rule.audit is not None:
        params = {**request.query_params, **request.path_params}
        detail = {**rule.note, **{k: str(params[k]) for k in rule.detail if k in params}}
        await gateway.audit.record(principal, rule.audit, camera=camera_id, detail=detail)
    request.state.principal = principal
    return principal


async def _check_object(
    gateway: Gateway, principal: Principal, rule: Rule, request: Request
) -> str | None:
    """404 unless the path's object is in scope; returns the camera id, if any."""
    scope = principal.scope
    if rule.by is By.CAMERA:
        camera_id = str(request.path_params["camera_id"])
        parse_device_code(camera_id, field="camera_id")  # 422, as the route itself would
        if not scope.unrestricted:
            # Same message as the store's, so "out of scope" and "absent" look alike.
            absent = NotFound(f"camera {camera_id} does not exist")
            try:
                camera = await gateway.store.get_camera(camera_id)
            except NotFound:
                raise absent from None
            if not scope.allows(camera):
                raise absent
        return camera_id
    if rule.by is By.REGION:
        code = str(request.path_params["code"])
        parse_region_code(code, field="code")
        if not scope.allows_region(code):
            raise NotFound(f"region {code} does not exist")
    return None


def require_scope(principal: Principal, camera: Placed) -> None:
    """For a camera described in a request body (create, change, onboard): 403 if the
    principal could not see it afterwards. The caller named the region and class itself,
    so saying so reveals nothing."""
    if not principal.scope.allows(camera):
        raise Forbidden(
            f"region {camera.region} / class {camera.camera_class} is outside your scope",
            code="out_of_scope",
        )


async def visible_cameras(gateway: Gateway, principal: Principal) -> set[str] | None:
    """Ids of the cameras in the principal's scope; None when it sees every camera."""
    scope = principal.scope
    if scope.unrestricted:
        return None
    return {c.id for c in await gateway.store.all_cameras() if scope.allows(c)}


CurrentPrincipal = Annotated[Principal, Depends(enforce)]
