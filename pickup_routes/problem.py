"""A pickup-route problem and its result: what the planner and the greedy baseline share.

Bins, trucks and a shift in; ordered truck routes and the bins left over (with a reason)
out; the travel matrices both solvers use, and the checks that make a problem plannable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pickup_routes.geo import FloatArray, haversine_matrix


@dataclass(frozen=True, slots=True)
class PlanStop:
    """A bin to collect: where, how many litres it will put in the truck, and whether it
    is full now (`must`) or only predicted to be full (dropped first)."""

    id: str
    lat: float
    lon: float
    load_l: float
    must: bool = True


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """One depot's trucks for one shift, and the bins to collect.

    Distances are great-circle times `detour_factor` unless `distances_m` is given
    ((n+1) x (n+1) metres, row and column 0 the depot, then the stops in order); travel
    times are distance / speed unless `durations_s` is given in the same layout.
    """

    depot_lat: float
    depot_lon: float
    stops: Sequence[PlanStop]
    trucks: int
    capacity_l: float
    shift_s: float
    service_s: float = 90.0
    speed_kmh: float = 25.0
    detour_factor: float = 1.3
    distances_m: FloatArray | None = None
    durations_s: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """A stop on a route: which bin, arrival after the route start, the truck's load after
    emptying it, and the length of the leg that led there."""

    stop: int
    arrival_s: float
    load_after_l: float
    leg_m: float


@dataclass(frozen=True, slots=True)
class TruckRoute:
    """One truck's visits in order; distance and duration include the way back."""

    truck: int
    visits: tuple[Visit, ...]
    distance_m: float
    duration_s: float
    load_l: float
    return_leg_m: float = 0.0


@dataclass(frozen=True, slots=True)
class Unserved:
    """A bin no truck collects, and why."""

    stop: int
    reason: str


@dataclass(frozen=True, slots=True)
class PlanResult:
    """Routes (trucks without stops left out), unserved bins, and how the search went
    (`stats`: the cost of each first solution built)."""

    routes: tuple[TruckRoute, ...]
    unserved: tuple[Unserved, ...]
    distance_m: float
    solve_s: float
    status: str
    time_limit_s: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)


class PlanningError(ValueError):
    """The problem is malformed (matrix shape, negative values, no trucks...)."""


def travel_matrices(problem: PlanProblem) -> tuple[FloatArray, FloatArray]:
    """(distances in metres, travel times in seconds) with the depot at index 0."""
    n = len(problem.stops) + 1
    if problem.distances_m is not None:
        dist = np.asarray(problem.distances_m, np.float64)
    else:
        lat = [problem.depot_lat, *(s.lat for s in problem.stops)]
        lon = [problem.depot_lon, *(s.lon for s in problem.stops)]
        dist = haversine_matrix(lat, lon) * problem.detour_factor
    if problem.durations_s is not None:
        times = np.asarray(problem.durations_s, np.float64)
    else:
        times = dist / (problem.speed_kmh / 3.6)
    for name, matrix in (("distances_m", dist), ("durations_s", times)):
        if matrix.shape != (n, n):
            raise PlanningError(f"{name} must be {n} x {n} (depot and {n - 1} bins)")
        if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
            raise PlanningError(f"{name} must hold finite, non-negative numbers")
    return dist, times


def check(problem: PlanProblem) -> None:
    """Raise PlanningError when the problem cannot be planned at all."""
    if problem.trucks < 1:
        raise PlanningError("at least one truck is needed")
    if problem.capacity_l <= 0 or problem.shift_s <= 0:
        raise PlanningError("truck capacity and shift length must be positive")
    if problem.speed_kmh <= 0 or problem.detour_factor < 1 or problem.service_s < 0:
        raise PlanningError("speed must be positive, detour factor >= 1, service time >= 0")
    if any(s.load_l < 0 or not math.isfinite(s.load_l) for s in problem.stops):
        raise PlanningError("bin loads must be finite and non-negative")


def why_unserved(problem: PlanProblem, dist: FloatArray, times: FloatArray, stop: int) -> str:
    """A readable reason for leaving a bin out."""
    load = problem.stops[stop].load_l
    if load > problem.capacity_l:
        return f"holds {load:.0f} L, more than a truck takes ({problem.capacity_l:.0f} L)"
    node = stop + 1
    round_trip = times[0, node] + problem.service_s + times[node, 0]
    if round_trip > problem.shift_s:
        return (
            f"there and back takes {round_trip / 60:.0f} min with the pickup, "
            f"longer than the {problem.shift_s / 60:.0f} min shift"
        )
    return (
        f"no truck had room or time left ({problem.trucks} x {problem.capacity_l:.0f} L, "
        f"{problem.shift_s / 3600:.1f} h shift)"
    )
