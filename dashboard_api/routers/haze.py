"""/api/v1/haze: the regional smoke haze the rule engine estimates (docs/rules.md "Haze")."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from dashboard_api.deps import Services
from dashboard_api.inputs import JSON_CHECKED

router = APIRouter(prefix="/haze", tags=["haze"], dependencies=JSON_CHECKED)


class HazeRegion(BaseModel):
    """One district (or map cell) as of the rule engine's last haze check."""

    region: str = Field(
        description="District (kecamatan), or `cell <lat>,<lon>` for devices without one."
    )
    detectors: int = Field(description="Fire detectors that reported recently.")
    stations: int = Field(description="Air-quality stations that reported recently.")
    level_pct_m: float | None = Field(
        description="Haze a median detector of the region sees (%/m); null: too few detectors."
    )
    pm25_ugm3: float | None = Field(description="PM2.5 outdoors (ug/m3).")
    pm25_source: Literal["stations", "detectors"] | None = Field(
        description="Measured by the air-quality stations, or estimated from the detectors."
    )
    outdoor_obscuration_pct_m: float | None = Field(
        description="Obscuration of outdoor air (%/m), from the PM2.5 (contract/optics.py)."
    )
    visibility_m: float | None = Field(description="Estimated visibility (Koschmieder).")
    ispu: int | None = Field(description="Indeks Standar Pencemar Udara from PM2.5.")
    category: str | None = Field(description="ISPU category: baik ... berbahaya.")
    trend: Literal["rising", "steady", "falling"] | None = Field(
        description="PM2.5 against an hour ago; null until there is an hour of history."
    )
    alert: bool = Field(description="A haze.regional alert is active for the region.")
    checked_ms: int = Field(description="When the engine last checked (epoch ms).")


@router.get(
    "",
    responses={503: {"description": "This process runs no rule engine (an API-only worker)."}},
)
async def list_haze(services: Services) -> list[HazeRegion]:
    """Every region with recent readings: haze level, PM2.5, ISPU, visibility and trend."""
    if services.haze is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "no rule engine here to estimate the haze"
        )
    return [HazeRegion.model_validate(region, from_attributes=True) for region in services.haze()]
