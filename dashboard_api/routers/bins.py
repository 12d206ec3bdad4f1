"""/api/v1/bins: each bin's fill, fill rate and predicted time until full."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from contract.readings import DeviceKind
from dashboard_api.deps import Services
from dashboard_api.inputs import Offset
from devices.schemas import DevicePublic

router = APIRouter(prefix="/bins", tags=["bins"])

LEVELS = {0: "ok", 1: "nearly_full", 2: "full"}


class BinPublic(BaseModel):
    """A bin with what the rule engine knows of its fill."""

    id: str
    name: str
    district: str
    lat: float
    lon: float
    depth_mm: float | None
    last_seen_at: datetime | None
    fill_pct: float | None  # smoothed
    fill_rate_pct_per_h: float | None
    hours_to_full: float | None  # None: not filling (or not known yet)
    level: str | None  # ok, nearly_full, full


def _public(services: Services, device: DevicePublic) -> BinPublic:
    found = services.bin_status(device.id)
    seen = services.last_seen(device.id) or device.last_seen_at
    return BinPublic(
        id=device.id,
        name=device.name,
        district=device.district,
        lat=device.lat,
        lon=device.lon,
        depth_mm=device.depth_mm,
        last_seen_at=seen,
        fill_pct=round(found.fill_pct, 1) if found else None,
        fill_rate_pct_per_h=round(found.rate_pct_per_h, 2)
        if found and found.rate_pct_per_h is not None
        else None,
        hours_to_full=round(found.hours_to_full, 2)
        if found and found.hours_to_full is not None
        else None,
        level=LEVELS[found.level] if found else None,
    )


@router.get("")
async def list_bins(
    services: Services,
    district: str | None = None,
    min_fill_pct: Annotated[float | None, Query(ge=0, le=100, allow_inf_nan=False)] = None,
    full_within_h: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    offset: Offset = 0,
) -> list[BinPublic]:
    """Bins ordered by id; filter by fill now or predicted to be full within N hours."""
    devices = await services.devices.find(
        kind=DeviceKind.bin.value, district=district, limit=limit, offset=offset
    )
    bins = [_public(services, d) for d in devices]
    if min_fill_pct is not None:
        bins = [b for b in bins if b.fill_pct is not None and b.fill_pct >= min_fill_pct]
    if full_within_h is not None:
        bins = [b for b in bins if b.hours_to_full is not None and b.hours_to_full <= full_within_h]
    return bins


@router.get("/{bin_id}")
async def get_bin(bin_id: str, services: Services) -> BinPublic:
    """One bin."""
    device = await services.devices.get(bin_id)
    if device is None or device.kind is not DeviceKind.bin:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"bin {bin_id!r} is not registered")
    return _public(services, device)
