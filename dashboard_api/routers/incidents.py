"""/api/v1/incidents: confirmed fires with their grouped alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from dashboard_api.deps import Services
from dashboard_api.inputs import RowId
from dispatch.model import IncidentPublic

router = APIRouter(prefix="/incidents", tags=["incidents"])


@router.get("")
async def list_incidents(
    services: Services,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[IncidentPublic]:
    """Incidents, newest first."""
    return await services.alerts.incidents(active=active, limit=limit)


@router.get("/{incident_id}")
async def get_incident(incident_id: RowId, services: Services) -> IncidentPublic:
    """One incident with its alert ids and devices."""
    found = await services.alerts.incident(incident_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id} not found")
    return found
