"""API schemas of pickup routes (XCreate / XPublic). Units: litres (L) for bin contents
and truck capacity, metres for distances, seconds for durations, percent for fill."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from devices.schemas import DeviceId


class StopStatus(StrEnum):
    """Where a stop stands: planned -> done (crew) -> flagged (readings say not emptied);
    planned -> skipped (crew, with a reason; or Sigap when the bin catches fire)."""

    planned = "planned"
    done = "done"
    skipped = "skipped"
    flagged = "flagged"


class RouteStatus(StrEnum):
    """A route's progress, from its stops."""

    planned = "planned"  # no stop handled yet
    in_progress = "in_progress"
    completed = "completed"  # every stop done, skipped or flagged


class DistanceMatrix(BaseModel):
    """Road distances (and optionally travel times) between the depot and bins, e.g. from
    OSRM's table service; `ids` names the rows and columns and must include the depot."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=2, max_length=2001)
    metres: list[list[float]] = Field(description="metres[i][j]: from ids[i] to ids[j].")
    seconds: list[list[float]] | None = Field(
        default=None, description="Travel times; default: metres at the planning speed."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        n = len(self.ids)
        if len(set(self.ids)) != n:
            raise ValueError("distance_matrix.ids must be unique")
        for name, rows in (("metres", self.metres), ("seconds", self.seconds)):
            if rows is None:
                continue
            if len(rows) != n or any(len(row) != n for row in rows):
                raise ValueError(f"distance_matrix.{name} must be {n} x {n}, like ids")
            values = np.asarray(rows, np.float64)
            if not np.all(np.isfinite(values)) or np.any(values < 0):
                raise ValueError(f"distance_matrix.{name} must hold finite values >= 0")
        return self


class RoutePlanCreate(BaseModel):
    """Plan a depot's routes. Everything but `depot_id` defaults from the depot and the
    SIGAP_ROUTES_* settings."""

    model_config = ConfigDict(extra="forbid")

    depot_id: str = Field(max_length=64)
    start: AwareDatetime | None = Field(
        default=None,
        description="When trucks leave (default: the depot's next shift start, or now "
        "during a shift).",
    )
    end: AwareDatetime | None = Field(
        default=None, description="When trucks must be back (default: the shift end)."
    )
    trucks: int | None = Field(default=None, ge=1, le=500)
    truck_capacity_l: float | None = Field(
        default=None, gt=0, le=200_000, description="Litres of bin contents per truck."
    )
    bin_volume_l: float | None = Field(
        default=None, gt=0, le=10_000, description="Volume of a bin (default 660 L)."
    )
    service_s: float | None = Field(default=None, ge=0, le=3600, description="Per pickup.")
    speed_kmh: float | None = Field(default=None, gt=0, le=120)
    detour_factor: float | None = Field(
        default=None, ge=1, le=5, description="Road distance / great-circle distance."
    )
    time_limit_s: float | None = Field(default=None, gt=0, le=120)
    distance_matrix: DistanceMatrix | None = None
    bin_ids: list[DeviceId] | None = Field(
        default=None, description="Consider only these bins (default: the depot's bins)."
    )
    by: str | None = Field(default=None, max_length=100, description="Who asked.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class StopDone(BaseModel):
    """A crew emptied the bin."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, max_length=100)
    at: AwareDatetime | None = Field(
        default=None, description="When (default: now); for crews that sync later."
    )


class StopSkip(BaseModel):
    """A crew could not empty the bin."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="e.g. blocked by a car")
    by: str | None = Field(default=None, max_length=100)


class StopPublic(BaseModel):
    """A stop on a route."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    bin_id: str
    lat: float
    lon: float
    why: str = Field(description="full or predicted_full")
    fill_pct: float | None = Field(description="Fill when planned (%).")
    eta: datetime
    expected_fill_pct: float = Field(description="Predicted fill at the ETA (%).")
    expected_load_l: float = Field(description="Litres it puts in the truck at the ETA.")
    leg_m: float = Field(description="Distance from the previous stop (or the depot).")
    status: StopStatus
    done_at: datetime | None = None
    by: str | None = None
    skip_reason: str | None = None
    confirmed_at: datetime | None = Field(
        default=None, description="Event time of the reading that showed the bin emptied."
    )
    fill_after_pct: float | None = None
    flagged_at: datetime | None = None
    flag_reason: str | None = None


class StopEventPublic(BaseModel):
    """A change to a stop: who (or `sigap`), when, and what (done, skipped, confirmed,
    flagged)."""

    model_config = ConfigDict(from_attributes=True)

    bin_id: str
    type: str
    at: datetime
    by: str | None
    detail: str


class RoutePublic(BaseModel):
    """One truck's route: ordered stops with ETAs and loads, and GeoJSON for maps."""

    id: int
    plan_id: int
    depot_id: str
    truck: int
    status: RouteStatus
    flagged: bool = Field(description="A stop's readings did not show the bin emptied.")
    start_at: datetime
    end_at: datetime
    distance_m: float
    duration_s: float = Field(description="From leaving the depot to being back.")
    load_l: float
    capacity_l: float
    stops: list[StopPublic]
    geojson: dict[str, Any] = Field(
        description="FeatureCollection: the path (LineString, straight legs) and the depot "
        "and stops (Points); positions are [lon, lat]."
    )


class UnservedBin(BaseModel):
    """A bin the plan wanted but no truck could take."""

    bin_id: str
    why: str
    fill_pct: float | None
    load_l: float
    reason: str


class ExcludedBin(BaseModel):
    """A bin left out of the plan: burning, on_route, no_reading or not_due."""

    bin_id: str
    reason: str
    route_id: int | None = None


class PlanPublic(BaseModel):
    """A planning run: its routes, the bins it could not serve, and the bins left out."""

    id: int
    depot_id: str
    trigger: str
    by: str | None
    planned_at: datetime
    shift_start: datetime
    start_at: datetime
    end_at: datetime
    window_end: datetime = Field(description="Bins full before this are collected.")
    trucks: int
    truck_capacity_l: float
    bin_volume_l: float
    service_s: float
    speed_kmh: float
    detour_factor: float
    distance_source: str = Field(description="great_circle or matrix")
    time_limit_s: float
    solve_s: float
    solver_status: str
    distance_m: float
    routes: list[RoutePublic]
    unserved: list[UnservedBin]
    excluded: list[ExcludedBin]
