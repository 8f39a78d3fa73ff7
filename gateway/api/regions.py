"""/api/v1/regions: the county ▸ township ▸ village tree, with camera and online counts."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Response, status

from gateway.api.deps import GatewayDep
from gateway.api.schemas import RegionIn, RegionNodeOut, RegionPatch
from gateway.catalog.codes import parse_region_code
from gateway.catalog.models import Region, RegionNode
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


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RegionNodeOut)
async def create_region(body: RegionIn, gateway: GatewayDep) -> RegionNodeOut:
    return _out(await gateway.store.create_region(body.to_region()), {})


@router.get("", response_model=list[RegionNodeOut])
async def region_tree(gateway: GatewayDep) -> list[RegionNodeOut]:
    counts = await region_counts(gateway)
    return [_out(n.region, counts, n.children) for n in await gateway.store.region_tree()]


@router.patch("/{code}", response_model=RegionNodeOut)
async def update_region(code: str, body: RegionPatch, gateway: GatewayDep) -> RegionNodeOut:
    parse_region_code(code, field="code")
    region = await gateway.store.update_region(code, body.name)
    return _out(region, await region_counts(gateway))


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_region(code: str, gateway: GatewayDep) -> Response:
    parse_region_code(code, field="code")
    await gateway.store.delete_region(code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
