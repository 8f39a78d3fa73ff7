"""Sign-in for the web page, users and API tokens (admins), and the login page.

- ``POST /api/v1/session`` — username and password → session cookie; ``GET`` who am I;
  ``DELETE`` sign out
- ``/api/v1/users`` — list, create; ``/api/v1/users/{id}`` — read, change, delete
- ``/api/v1/tokens`` — list, create (the token is in this one response only);
  ``DELETE /api/v1/tokens/{id}`` — revoke
- ``GET /login`` — the sign-in page of the video wall

An admin whose own scope is limited manages only users whose scope lies within it, and
cannot hand out more than it has.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.api.deps import GatewayDep
from gateway.audit import Action
from gateway.auth.principals import (
    Principal,
    Role,
    Scope,
    TokenInfo,
    User,
    anonymous,
    check_username,
    parse_scope,
)
from gateway.auth.rules import CurrentPrincipal
from gateway.auth.sessions import COOKIE, cookie_secure, same_origin
from gateway.errors import Forbidden, InvalidInput, NotFound, Unauthenticated

router = APIRouter(tags=["access"])
LOGIN_PAGE = Path(__file__).resolve().parents[1] / "auth" / "login.html"

Regions = list[Annotated[str, Field(min_length=6, max_length=12)]]
Classes = list[Annotated[str, Field(pattern="^[ABC]$")]]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    username: str
    role: Role
    regions: list[str] | None = Field(description="null: every region")
    classes: list[str] | None = Field(description="null: every class")
    via: str = Field(description="session, or token:<id>")

    @classmethod
    def of(cls, p: Principal) -> SessionOut:
        regions, classes = _scope_out(p.scope)
        return cls(username=p.name, role=p.role, regions=regions, classes=classes, via=p.via)


class UserIn(_In):
    username: str = Field(min_length=1, max_length=64)
    role: Role
    regions: Regions | None = Field(None, description="region subtrees; null: every region")
    classes: Classes | None = Field(None, description="camera classes; null: every class")
    password: SecretStr | None = Field(
        None, max_length=1024, description="for the web page; none: API tokens only"
    )


class UserPatch(_In):
    role: Role | None = None
    regions: Regions | None = None
    classes: Classes | None = None
    password: SecretStr | None = Field(None, max_length=1024)
    disabled: bool | None = None


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    regions: list[str] | None
    classes: list[str] | None
    has_password: bool
    disabled: bool
    created_at: float
    created_by: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        regions, classes = _scope_out(user.scope)
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            regions=regions,
            classes=classes,
            has_password=user.has_password,
            disabled=user.disabled,
            created_at=user.created_at,
            created_by=user.created_by,
        )


class TokenIn(_In):
    name: str = Field(min_length=1, max_length=100, description="what or who uses it")
    user_id: int | None = Field(None, description="the user it acts as; none: yourself")
    expires_days: float | None = Field(
        None, gt=0, description="lifetime; none: the longest allowed (token_max_days)"
    )


class TokenOut(BaseModel):
    id: int
    user_id: int
    username: str
    name: str
    hint: str = Field(description="the token's first characters")
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    @classmethod
    def of(cls, t: TokenInfo) -> TokenOut:
        return cls(
            id=t.id,
            user_id=t.user_id,
            username=t.username,
            name=t.name,
            hint=t.hint,
            created_at=t.created_at,
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
            last_used_at=t.last_used_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="shown in this response only: store it now")


def _scope_out(scope: Scope) -> tuple[list[str] | None, list[str] | None]:
    regions = None if scope.regions is None else list(scope.regions)
    classes = None if scope.classes is None else sorted(c.value for c in scope.classes)
    return regions, classes


def _grantable(actor: Principal, scope: Scope) -> None:
    if not actor.scope.covers(scope):
        raise Forbidden("you cannot grant a scope wider than your own", code="scope_escalation")


async def _managed_user(gateway: GatewayDep, actor: Principal, user_id: int) -> User:
    """The user, if ``actor`` may manage it; 404 as for a missing user otherwise."""
    user = await gateway.security.directory.user(user_id)
    if not actor.scope.covers(user.scope):
        raise NotFound(f"user {user_id} does not exist")
    return user


# --- session ---------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page() -> HTMLResponse:
    return HTMLResponse(
        LOGIN_PAGE.read_text(encoding="utf-8"),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
        },
    )


@router.post("/api/v1/session", response_model=SessionOut)
async def login(
    body: LoginIn, request: Request, response: Response, gateway: GatewayDep
) -> SessionOut:
    security = gateway.security
    address = request.client.host if request.client else "-"
    if not same_origin(request):
        raise Forbidden("cross-site sign-in refused", code="cross_site_request")
    keys = (f"login:{body.username.lower()}", f"addr:{address}")
    security.failures.check(*keys)
    user = await security.directory.check_login(body.username, body.password.get_secret_value())
    if user is None:
        who = anonymous(address, via="password")
        await gateway.audit.record(
            who, Action.LOGIN_FAILED, detail={"username": body.username[:64]}, outcome="failed"
        )
        await security.failures.failed(*keys)
        raise Unauthenticated("wrong username or password")
    principal = user.principal("session", address)
    cookie = security.sessions.create(user.id)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(security.settings.session_max_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(security.settings, request),
    )
    response.headers["Cache-Control"] = "no-store"
    await gateway.audit.record(principal, Action.LOGIN)
    return SessionOut.of(principal)


@router.get("/api/v1/session", response_model=SessionOut)
async def whoami(principal: CurrentPrincipal) -> SessionOut:
    return SessionOut.of(principal)


@router.delete("/api/v1/session", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, principal: CurrentPrincipal, gateway: GatewayDep) -> Response:
    cookie = request.cookies.get(COOKIE)
    if cookie is not None:
        gateway.security.sessions.end(cookie)
        await gateway.audit.record(principal, Action.LOGOUT)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- users -----------------------------------------------------------------------------------


@router.get("/api/v1/users", response_model=list[UserOut])
async def list_users(principal: CurrentPrincipal, gateway: GatewayDep) -> list[UserOut]:
    users = await gateway.security.directory.users()
    return [UserOut.of(u) for u in users if principal.scope.covers(u.scope)]


@router.post("/api/v1/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, principal: CurrentPrincipal, gateway: GatewayDep) -> UserOut:
    scope = parse_scope(body.regions, body.classes)
    _grantable(principal, scope)
    password = body.password.get_secret_value() if body.password else None
    user = await gateway.security.directory.create_user(
        check_username(body.username), body.role, scope, password, principal.name
    )
    await gateway.audit.record(
        principal,
        Action.USER_CREATE,
        detail={"user": user.username, "role": user.role.value, "scope": _scope_text(scope)},
    )
    return UserOut.of(user)


@router.get("/api/v1/users/{user_id}", response_model=UserOut)
async def get_user(user_id: int, principal: CurrentPrincipal, gateway: GatewayDep) -> UserOut:
    return UserOut.of(await _managed_user(gateway, principal, user_id))


@router.patch("/api/v1/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: int, body: UserPatch, principal: CurrentPrincipal, gateway: GatewayDep
) -> UserOut:
    current = await _managed_user(gateway, principal, user_id)
    given = body.model_fields_set
    scope = None
    if given & {"regions", "classes"}:
        regions, classes = _scope_out(current.scope)
        scope = parse_scope(
            body.regions if "regions" in given else regions,
            body.classes if "classes" in given else classes,
        )
        _grantable(principal, scope)
    security = gateway.security
    user = await security.directory.update_user(
        user_id,
        role=body.role,
        scope=scope,
        password=body.password.get_secret_value() if body.password else None,
        disabled=body.disabled,
    )
    if given - {"role"}:  # new scope, password or disabled: sessions start over
        security.sessions.end_user(user_id)
    changed = sorted(given - {"password"}) + (["password"] if body.password else [])
    await gateway.audit.record(
        principal, Action.USER_UPDATE, detail={"user": user.username, "changed": changed}
    )
    return UserOut.of(user)


@router.delete("/api/v1/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: int, principal: CurrentPrincipal, gateway: GatewayDep) -> Response:
    await _managed_user(gateway, principal, user_id)
    user = await gateway.security.directory.delete_user(user_id)
    gateway.security.sessions.end_user(user_id)
    await gateway.audit.record(principal, Action.USER_DELETE, detail={"user": user.username})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _scope_text(scope: Scope) -> str:
    regions, classes = _scope_out(scope)
    return f"regions={','.join(regions) if regions is not None else '*'} " + (
        f"classes={','.join(classes) if classes is not None else '*'}"
    )


# --- tokens ----------------------------------------------------------------------------------


@router.get("/api/v1/tokens", response_model=list[TokenOut])
async def list_tokens(
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    user_id: Annotated[int | None, Query(description="only this user's")] = None,
) -> list[TokenOut]:
    directory = gateway.security.directory
    visible = {u.id for u in await directory.users() if principal.scope.covers(u.scope)}
    return [TokenOut.of(t) for t in await directory.tokens(user_id) if t.user_id in visible]


@router.post("/api/v1/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
async def create_token(
    body: TokenIn, principal: CurrentPrincipal, gateway: GatewayDep
) -> TokenCreated:
    security = gateway.security
    user_id = body.user_id if body.user_id is not None else principal.user_id
    if user_id is None:
        raise InvalidInput("name the user the token acts as", field="user_id")
    user = await _managed_user(gateway, principal, user_id)
    longest = security.settings.token_max_days
    days = body.expires_days if body.expires_days is not None else longest
    if days > longest:
        raise InvalidInput(f"a token lives at most {longest:g} days", field="expires_days")
    token, info = await security.directory.create_token(
        user.id, body.name, time.time() + days * 86400
    )
    await gateway.audit.record(
        principal,
        Action.TOKEN_CREATE,
        detail={"token_id": info.id, "user": user.username, "name": body.name},
    )
    return TokenCreated(**TokenOut.of(info).model_dump(), token=token)


@router.delete("/api/v1/tokens/{token_id}", response_model=TokenOut)
async def revoke_token(token_id: int, principal: CurrentPrincipal, gateway: GatewayDep) -> TokenOut:
    directory = gateway.security.directory
    info = await directory.token(token_id)
    try:
        await _managed_user(gateway, principal, info.user_id)
    except NotFound:
        raise NotFound(f"token {token_id} does not exist") from None
    revoked = await directory.revoke_token(token_id)
    await gateway.audit.record(
        principal, Action.TOKEN_REVOKE, detail={"token_id": token_id, "user": info.username}
    )
    return TokenOut.of(revoked)
