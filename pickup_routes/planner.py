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
from dataclasses import dataclass

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from pickup_routes.baseline import nearest_neighbour
from pickup_routes.problem import (
    PlanProblem,
    PlanResult,
    TruckRoute,
    Unserved,
    Visit,
    check,
    travel_matrices,
    why_unserved,
)


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
