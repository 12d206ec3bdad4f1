"""/api/v1/stations: fire stations and waste depots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from dashboard_api.auth import DISPATCHER
from dashboard_api.deps import Stations
from dashboard_api.inputs import JSON_CHECKED, Offset
from dispatch.stations.registry import StationExistsError
from dispatch.stations.schemas import StationCreate, StationKind, StationPublic

router = APIRouter(prefix="/stations", tags=["stations"], dependencies=JSON_CHECKED)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=DISPATCHER,
    responses={409: {"description": "The id is taken."}},
)
async def create_station(station: StationCreate, stations: Stations) -> StationPublic:
    """Register a fire station or a waste depot (depots: trucks, capacity, shift in WIB)."""
    try:
        return await stations.create(station)
    except StationExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("")
async def list_stations(
    stations: Stations,
    kind: StationKind | None = None,
    district: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Offset = 0,
) -> list[StationPublic]:
    """Stations ordered by id."""
    return await stations.find(
        kind=kind.value if kind else None, district=district, limit=limit, offset=offset
    )


@router.get("/{station_id}")
async def get_station(station_id: str, stations: Stations) -> StationPublic:
    """One station."""
    found = await stations.get(station_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"station {station_id!r} is not registered")
    return found
