"""The pure route planner: bins, trucks and a shift in, ordered truck routes out (no I/O).

A capacitated vehicle routing problem with a shift length, solved with OR-Tools' routing
solver: the cheaper of a parallel-savings and a Christofides first solution, then guided
local search until the time limit. Every
bin is optional with a drop penalty, so an over-subscribed day still gives routes and a
list of the bins left over; a bin that is full now outweighs all predicted ones together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routes.geo import FloatArray, haversine_matrix


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
class PlanOptions:
    """How hard to search. Without `time_limit_s` the limit grows with the number of bins
    (0.5 s + 12 ms per bin) up to `max_time_limit_s`."""

    time_limit_s: float | None = None
    max_time_limit_s: float = 8.0
    # First solutions to build; local search starts from the cheapest. Savings suits many
    # trucks, Christofides few (a tour); both take well under a second for 1,000 bins.
    first_solutions: tuple[str, ...] = ("PARALLEL_SAVINGS", "CHRISTOFIDES")
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    solution_limit: int | None = None  # stop after this many solutions (repeatable tests)

    def limit_for(self, bins: int) -> float:
        """The time limit used for a problem of this many bins."""
        if self.time_limit_s is not None:
            return self.time_limit_s
        return min(self.max_time_limit_s, 0.5 + 0.012 * bins)


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


def plan_routes(problem: PlanProblem, options: PlanOptions | None = None) -> PlanResult:
    """Plan the trucks' routes (blocks for up to the time limit; CPU-bound, holds the GIL)."""
    options = options or PlanOptions()
    check(problem)
    began = time.perf_counter()
    dist, times = travel_matrices(problem)
    n = len(problem.stops)
    limit = options.limit_for(n)
    if n == 0:
        return PlanResult((), (), 0.0, time.perf_counter() - began, "EMPTY", limit)

    # OR-Tools works in integers: metres, seconds, litres (loads rounded up, capacity down,
    # so the integer model never accepts more than the trucks hold).
    dist_int = np.rint(dist).astype(np.int64)
    service = np.full(n + 1, problem.service_s)
    service[0] = 0.0
    time_int = np.rint(times + service[:, None]).astype(np.int64)
    np.fill_diagonal(time_int, 0)
    loads = [0, *(math.ceil(s.load_l) for s in problem.stops)]
    capacity = math.floor(problem.capacity_l)
    shift = math.floor(problem.shift_s)

    manager = pywrapcp.RoutingIndexManager(n + 1, problem.trucks, 0)
    routing = pywrapcp.RoutingModel(manager)
    # Matrices rather than Python callbacks: the solver then never calls back into Python,
    # which is what makes 1,000 bins tractable.
    arc = routing.RegisterTransitMatrix(dist_int.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    demand = routing.RegisterUnaryTransitVector(loads)
    routing.AddDimensionWithVehicleCapacity(demand, 0, [capacity] * problem.trucks, True, "load")
    travel = routing.RegisterTransitMatrix(time_int.tolist())
    routing.AddDimension(travel, 0, shift, True, "time")
    time_dim = routing.GetDimensionOrDie("time")

    # Dropping a predicted bin must cost more than any detour to collect it; dropping a
    # full one more than dropping every predicted bin.
    optional_penalty = int(4 * dist_int.max() + 1000)
    optionals = sum(1 for s in problem.stops if not s.must)
    must_penalty = optional_penalty * (optionals + 1)
    for node, stop in enumerate(problem.stops, start=1):
        penalty = must_penalty if stop.must else optional_penalty
        routing.AddDisjunction([manager.NodeToIndex(node)], penalty)

    deadline = began + limit
    start = None
    stats: dict[str, float] = {}
    for name in options.first_solutions:
        first = pywrapcp.DefaultRoutingSearchParameters()
        first.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.Value.Value(name)
        first.solution_limit = 1  # the construction only, no local search yet
        first.time_limit.FromMilliseconds(max(1, int((deadline - time.perf_counter()) * 1000)))
        candidate = routing.SolveWithParameters(first)
        if candidate is not None:
            stats[name] = float(candidate.ObjectiveValue())
            if start is None or candidate.ObjectiveValue() < start.ObjectiveValue():
                start = candidate
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.Value.Value(
        options.metaheuristic
    )
    params.time_limit.FromMilliseconds(max(1, int((deadline - time.perf_counter()) * 1000)))
    if options.solution_limit is not None:
        params.solution_limit = options.solution_limit
    if start is not None:
        solution = routing.SolveFromAssignmentWithParameters(start, params)
    else:
        params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.AUTOMATIC
        solution = routing.SolveWithParameters(params)
    status = routing_enums_pb2.RoutingSearchStatus.Value.Name(routing.status())
    if solution is None:
        # No first solution within the limit (a huge instance, a tiny limit): the greedy
        # plan is better than no plan for the crews.
        from routes.baseline import nearest_neighbour

        fallback = nearest_neighbour(problem)
        return PlanResult(
            fallback.routes,
            fallback.unserved,
            fallback.distance_m,
            time.perf_counter() - began,
            f"{status}: nearest-neighbour fallback",
            limit,
        )

    routes: list[TruckRoute] = []
    served: set[int] = set()
    for truck in range(problem.trucks):
        index = routing.Start(truck)
        previous = 0
        visits: list[Visit] = []
        load = 0.0
        distance = 0.0
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            leg = float(dist[previous, node])
            distance += leg
            load += problem.stops[node - 1].load_l
            visits.append(
                Visit(node - 1, float(solution.Value(time_dim.CumulVar(index))), load, leg)
            )
            served.add(node - 1)
            previous = node
            index = solution.Value(routing.NextVar(index))
        if not visits:
            continue
        back = float(dist[previous, 0])
        routes.append(
            TruckRoute(
                truck,
                tuple(visits),
                distance + back,
                float(solution.Value(time_dim.CumulVar(index))),
                load,
                back,
            )
        )
    unserved = tuple(
        Unserved(i, why_unserved(problem, dist, times, i)) for i in range(n) if i not in served
    )
    return PlanResult(
        tuple(routes),
        unserved,
        sum(r.distance_m for r in routes),
        time.perf_counter() - began,
        status,
        limit,
        stats,
    )


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
