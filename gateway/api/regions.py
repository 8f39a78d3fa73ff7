"""/api/v1/regions: the county ▸ township ▸ village tree, with camera and online counts."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Response, status

from gateway.api.deps import GatewayDep
from gateway.api.schemas import RegionIn, RegionNodeOut, RegionPatch
from gateway.audit import Action
from gateway.auth.principals import Scope
from gateway.auth.rules import CurrentPrincipal
from gateway.catalog.codes import parse_region_code
from gateway.catalog.models import Region, RegionNode
from gateway.errors import Forbidden
from gateway.metrics import region_counts

router = APIRouter(prefix="/api/v1/regions", tags=["regions"])

Counts = dict[str, tuple[int, int]]


def _out(region: Region, counts: Counts, children: Sequence[RegionNode] = ()) -> RegionNodeOut:
    total, online = counts.get(region.code, (0, 0))
    return RegionNodeOut(
        code=region.code,
        name=region.name,
        level=region.level.value,
        parent=region.parent,
        cameras=total,
        online=online,
        children=[_out(c.region, counts, c.children) for c in children],
    )


def _visible(nodes: Sequence[RegionNode], scope: Scope) -> list[RegionNode]:
    """The tree cut to ``scope``: its top regions become the roots (no ancestors shown)."""
    if scope.regions is None:
        return list(nodes)
    found: list[RegionNode] = []
    for node in nodes:
        if scope.allows_region(node.region.code):
            found.append(node)
        else:
            found.extend(_visible(node.children, scope))
    return found


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RegionNodeOut)
async def create_region(
    body: RegionIn, gateway: GatewayDep, principal: CurrentPrincipal
) -> RegionNodeOut:
    region = body.to_region()
    if not principal.scope.allows_region(region.code):
        raise Forbidden(f"region {region.code} is outside your scope", code="out_of_scope")
    created = await gateway.store.create_region(region)
    await gateway.audit.record(principal, Action.REGION_CREATE, detail={"region": region.code})
    return _out(created, {})


@router.get("", response_model=list[RegionNodeOut])
async def region_tree(gateway: GatewayDep, principal: CurrentPrincipal) -> list[RegionNodeOut]:
    counts = await region_counts(gateway, principal.scope.allows)
    tree = _visible(await gateway.store.region_tree(), principal.scope)
    return [_out(n.region, counts, n.children) for n in tree]


@router.patch("/{code}", response_model=RegionNodeOut)
async def update_region(
    code: str, body: RegionPatch, gateway: GatewayDep, principal: CurrentPrincipal
) -> RegionNodeOut:
    parse_region_code(code, field="code")
    region = await gateway.store.update_region(code, body.name)
    await gateway.audit.record(principal, Action.REGION_UPDATE, detail={"region": code})
    return _out(region, await region_counts(gateway, principal.scope.allows))


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_region(code: str, gateway: GatewayDep, principal: CurrentPrincipal) -> Response:
    parse_region_code(code, field="code")
    await gateway.store.delete_region(code)
    await gateway.audit.record(principal, Action.REGION_DELETE, detail={"region": code})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
