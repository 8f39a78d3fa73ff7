"""``GET /api/v1/audit``: the audit log, as JSON pages or CSV (admin, police).

A reader whose scope is limited to regions sees only the entries about cameras in those
regions; logins, user and token changes are for unrestricted readers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel

from gateway.api.deps import GatewayDep
from gateway.audit import Action, AuditQuery, Entry, to_csv
from gateway.auth.rules import CurrentPrincipal

router = APIRouter(tags=["access"])


class EntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    role: str
    via: str
    address: str
    action: str
    outcome: str
    camera: str | None
    region: str | None
    detail: dict[str, Any]
    hash: str

    @classmethod
    def of(cls, e: Entry) -> EntryOut:
        return cls(**{name: getattr(e, name) for name in cls.model_fields})


class AuditPage(BaseModel):
    items: list[EntryOut]
    total: int
    limit: int
    offset: int


def _iso(t: datetime | None) -> str | None:
    # Stored as UTC ISO text with microseconds: compare like with like.
    return None if t is None else t.astimezone(UTC).isoformat(timespec="microseconds")


@router.get(
    "/api/v1/audit",
    response_model=AuditPage,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV"}},
)
async def audit_log(
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive")] = None,
    actor: str | None = None,
    action: Action | None = None,
    camera: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    format: Literal["json", "csv"] = "json",
) -> Any:
    query = AuditQuery(
        since=_iso(since),
        until=_iso(until),
        actor=actor,
        action=action.value if action else None,
        camera=camera,
        regions=None if principal.scope.unrestricted else (principal.scope.regions or ()),
        limit=limit,
        offset=offset,
    )
    entries, total = await gateway.audit.query(query)
    if format == "csv":
        return Response(
            to_csv(entries),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="sharpeyes-audit.csv"',
                "Cache-Control": "no-store",
            },
        )
    return AuditPage(
        items=[EntryOut.of(e) for e in entries], total=total, limit=limit, offset=offset
    )
