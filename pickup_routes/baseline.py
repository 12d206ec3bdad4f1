"""Nearest-neighbour routes: the greedy baseline the planner is measured against.

Truck after truck, drive to the nearest bin that still fits (capacity, and time to get
there, empty it and be back at the depot before the shift ends); when none fits, go home.
"""

from __future__ import annotations

import time

import numpy as np

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


def nearest_neighbour(problem: PlanProblem) -> PlanResult:
    """Greedy routes under the same capacity and shift constraints as the planner."""
    check(problem)
    began = time.perf_counter()
    dist, times = travel_matrices(problem)
    n = len(problem.stops)
    loads = np.array([s.load_l for s in problem.stops], np.float64)
    left = np.ones(n, bool)
    routes: list[TruckRoute] = []
    for truck in range(problem.trucks):
        if not left.any():
            break
        here, clock, load, distance = 0, 0.0, 0.0, 0.0
        visits: list[Visit] = []
        while True:
            arrive = clock + times[here, 1:]
            fits = (
                left
                & (load + loads <= problem.capacity_l)
                & (arrive + problem.service_s + times[1:, 0] <= problem.shift_s)
            )
            if not fits.any():
                break
            candidates = np.where(fits, dist[here, 1:], np.inf)
            stop = int(np.argmin(candidates))
            leg = float(dist[here, stop + 1])
            clock = float(arrive[stop])
            load += float(loads[stop])
            distance += leg
            visits.append(Visit(stop, clock, load, leg))
            clock += problem.service_s
            left[stop] = False
            here = stop + 1
        if visits:
            back = float(dist[here, 0])
            routes.append(
                TruckRoute(
                    truck,
                    tuple(visits),
                    distance + back,
                    clock + float(times[here, 0]),
                    load,
                    back,
                )
            )
    unserved = tuple(
        Unserved(i, why_unserved(problem, dist, times, i)) for i in np.flatnonzero(left).tolist()
    )
    return PlanResult(
        tuple(routes),
        unserved,
        sum(r.distance_m for r in routes),
        time.perf_counter() - began,
        "NEAREST_NEIGHBOUR",
    )
