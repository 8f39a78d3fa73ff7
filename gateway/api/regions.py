"""/api/v1/regions: the county ▸ township ▸ village tree, with camera and online counts."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gateway.api.deps import GatewayDep
from gateway.api.schemas import RegionIn, RegionNodeOut, RegionPatch
from gateway.catalog.codes import parse_region_code
from gateway.metrics import region_counts

router = APIRouter(prefix="/api/v1/regions", tags=["regions"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RegionNodeOut)
async def create_region(body: RegionIn, gateway: GatewayDep) -> RegionNodeOut:
    region = await gateway.store.create_region(body.to_region())
    return RegionNodeOut(code=region.code, name=region.name, level=region.level.value,
                         parent=region.parent, cameras=0, online=0)


@router.get("", response_model=list[RegionNodeOut])
async def region_tree(gateway: GatewayDep) -> list[RegionNodeOut]:
    counts = await region_counts(gateway)

    def node(n: object) -> RegionNodeOut:
        region = n.region  # type: ignore[attr-defined]
        total, online = counts.get(region.code, (0, 0))
        return RegionNodeOut(code=region.code, name=region.name, level=region.level.value,
                             parent=region.parent, cameras=total, online=online,
                             children=[node(c) for c in n.children])  # type: ignore[attr-defined]

    return [node(n) for n in await gateway.store.region_tree()]


@router.patch("/{code}", response_model=RegionNodeOut)
async def update_region(code: str, body: RegionPatch, gateway: GatewayDep) -> RegionNodeOut:
    parse_region_code(code, field="code")
    region = await gateway.store.update_region(code, body.name)
    total, online = (await region_counts(gateway)).get(region.code, (0, 0))
    return RegionNodeOut(code=region.code, name=region.name, level=region.level.value,
                         parent=region.parent, cameras=total, online=online)


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_region(code: str, gateway: GatewayDep) -> Response:
    parse_region_code(code, field="code")
    await gateway.store.delete_region(code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
