"""/api/v1/routes: plan pickup routes, read them (with GeoJSON), and record pickups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, status

from dashboard_api.auth import CREW, Caller
from dashboard_api.deps import Routes
from dashboard_api.inputs import JSON_CHECKED, MAX_ROW_ID, Offset, RowId
from pickup_routes.schemas import (
    PlanPublic,
    RoutePlanCreate,
    RoutePublic,
    RouteStatus,
    StopDone,
    StopEventPublic,
    StopPublic,
    StopSkip,
)
from pickup_routes.service import RouteConflictError, RouteInvalidError, RouteNotFoundError

router = APIRouter(prefix="/routes", tags=["routes"], dependencies=JSON_CHECKED)


_STOP_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The stop's status does not allow this (e.g. it is done)."}
}


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RouteNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except RouteInvalidError as exc:
        raise HTTPException(422, str(exc)) from None
    except RouteConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post(
    "/plan",
    status_code=status.HTTP_201_CREATED,
    dependencies=CREW,
    responses={404: {"description": "No station by depot_id."}},
)
async def plan_routes(request: RoutePlanCreate, routes: Routes) -> PlanPublic:
    """Plan a depot's routes for its next shift (or from `start`): bins full now or
    predicted full before the collection window ends, within each truck's capacity (L)
    and the shift; burning bins and bins on another running route are left out."""
    with _errors():
        return await routes.plan(request)


@router.get("")
async def list_routes(
    routes: Routes,
    depot_id: str | None = None,
    plan_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    status_: Annotated[RouteStatus | None, Query(alias="status")] = None,
    flagged: bool | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> list[RoutePublic]:
    """Routes, newest first; `flagged=true` for those with a bin not shown emptied."""
    return await routes.find(
        depot_id=depot_id,
        plan_id=plan_id,
        status=status_,
        flagged=flagged,
        since=since,
        limit=limit,
        offset=offset,
    )


@router.get("/plans/{plan_id}")
async def get_plan(plan_id: RowId, routes: Routes) -> PlanPublic:
    """One planning run with its routes, unserved and excluded bins."""
    found = await routes.get_plan(plan_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"plan {plan_id} not found")
    return found


@router.get("/{route_id}")
async def get_route(route_id: RowId, routes: Routes) -> RoutePublic:
    """One route: stops in order with ETA and expected load, and GeoJSON."""
    found = await routes.get(route_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"route {route_id} not found")
    return found


@router.get("/{route_id}/events")
async def route_events(route_id: RowId, routes: Routes) -> list[StopEventPublic]:
    """Who changed which stop, and when (oldest first)."""
    if await routes.get(route_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"route {route_id} not found")
    return await routes.events(route_id)


@router.post("/{route_id}/stops/{bin_id}/done", dependencies=CREW, responses=_STOP_CONFLICT)
async def stop_done(
    route_id: RowId,
    bin_id: str,
    routes: Routes,
    caller: Caller,
    done: Annotated[StopDone | None, Body()] = None,
) -> StopPublic:
    """The crew emptied the bin; its next readings confirm it or flag the stop."""
    done = done or StopDone()
    # Who, by default the token's name, as for alert actions: the audit trail needs a name.
    if done.by is None:
        done = done.model_copy(update={"by": caller.name})
    with _errors():
        return await routes.mark_done(route_id, bin_id, done)


@router.post("/{route_id}/stops/{bin_id}/skip", dependencies=CREW, responses=_STOP_CONFLICT)
@router.post(
    "/{route_id}/stops/{bin_id}/skipped",
    include_in_schema=False,
    dependencies=CREW,
)
async def stop_skipped(
    route_id: RowId, bin_id: str, skip: StopSkip, routes: Routes, caller: Caller
) -> StopPublic:
    """The crew could not empty the bin; `reason` says why."""
    if skip.by is None:
        skip = skip.model_copy(update={"by": caller.name})
    with _errors():
        return await routes.mark_skipped(route_id, bin_id, skip)
