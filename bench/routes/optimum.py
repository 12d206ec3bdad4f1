"""Proven optimum (or lower bound) of the bench.routes instances, to tell whether a route
of 0.8 x the nearest-neighbour baseline exists at all (see bench/routes/README.md).

Usage: .venv/bin/python -m bench.routes.optimum [--bins 50] [--trucks 1,2] [--seeds 3]
The last output line is one JSON object.

Exact model, CP-SAT on the planner's own distance matrix: one truck is a travelling
salesman tour (AddCircuit); more trucks share the depot (AddMultipleCircuit) with a load
carried along each route. Why the bound holds for the instance as the planner sees it:

- Distances are `travel_matrices(problem)` (great-circle x detour factor, what both
  planners use), floored to whole metres: every tour is at least as long in metres as in
  floored metres, so the solver's bound on floored metres bounds the true optimum
  (within 51 m of it at 50 bins). The tour found is measured again in unrounded metres.
- Every bin is visited, as bench.routes requires for its like-for-like comparison
  (`served == bins`); a plan that drops bins is shorter but not comparable.
- Each bin once and no passing through: great-circle x a constant is a metric, so a walk
  through other bins is never shorter than the direct leg (shortcutting only helps).
- Capacity: one truck takes 1.1 x the total load plus a bin (instances.py), so it cannot
  bind; we check it. With more trucks it binds and is modelled, with loads rounded down
  (capacity too), which only admits more routes: still a relaxation.
- Shift: not modelled (a relaxation, so the bound holds whatever the shift). The routes
  found are checked against it afterwards; when they fit, they are optimal for the full
  instance too, and they prove the target reachable when they are short enough.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from bench.routes.instances import instance
from pickup_routes.baseline import nearest_neighbour
from pickup_routes.geo import FloatArray
from pickup_routes.planner import PlanOptions, plan_routes
from pickup_routes.problem import PlanProblem, PlanResult, travel_matrices

RATIO_TARGET = 0.8


@dataclass(frozen=True, slots=True)
class Optimum:
    """What CP-SAT proved: a lower bound on the distance (the optimum when `status` is
    OPTIMAL), and the best routes found (bin indices, 0-based) with their true length."""

    status: str
    lower_bound_m: float
    routes: tuple[tuple[int, ...], ...]
    routes_m: float
    solve_s: float


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def solve_optimum(
    problem: PlanProblem,
    time_limit_s: float,
    workers: int,
    hint: PlanResult | None = None,
) -> Optimum:
    """Minimum total distance serving every bin with at most `problem.trucks` routes."""
    dist, _ = travel_matrices(problem)
    # Floored, not rounded like the planner's model: see the module docstring.
    metres = np.floor(dist).astype(np.int64)
    n = len(problem.stops) + 1
    model = cp_model.CpModel()
    arcs: dict[tuple[int, int], cp_model.IntVar] = {}
    for i in range(n):
        for j in range(n):
            if i != j:
                arcs[i, j] = model.new_bool_var(f"arc_{i}_{j}")
    arc_list = [(i, j, lit) for (i, j), lit in arcs.items()]
    total_l = sum(s.load_l for s in problem.stops)
    loads: list[cp_model.IntVar] = []
    if problem.trucks == 1:
        if total_l > problem.capacity_l:
            raise SystemExit("one truck cannot take every bin: no tour serves them all")
        model.add_circuit(arc_list)
    else:
        model.add_multiple_circuit(arc_list)
        departures = [arcs[0, j] for j in range(1, n)]
        model.add(sum(departures) <= problem.trucks)
        # Load on board after each bin (Miller-Tucker-Zemlin): it grows along every arc
        # between bins and never exceeds the capacity. Rounded down: a relaxation.
        demand = [0, *(math.floor(s.load_l) for s in problem.stops)]
        capacity = math.floor(problem.capacity_l)
        loads = [model.new_int_var(demand[i], capacity, f"load_{i}") for i in range(n)]
        for (i, j), lit in arcs.items():
            if i != 0 and j != 0:
                model.add(loads[j] >= loads[i] + demand[j]).only_enforce_if(lit)
    model.minimize(sum(int(metres[i, j]) * lit for (i, j), lit in arcs.items()))
    if hint is not None and not hint.unserved:
        # The planner's routes as a first solution: only speeds up the upper side.
        used: set[tuple[int, int]] = set()
        for route in hint.routes:
            nodes = [0, *(v.stop + 1 for v in route.visits), 0]
            used.update(pairwise(nodes))
            on_board = 0
            for node in nodes[1:-1]:
                on_board += math.floor(problem.stops[node - 1].load_l)
                if loads:
                    model.add_hint(loads[node], on_board)
        for key, lit in arcs.items():
            model.add_hint(lit, key in used)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    # More workers than cores on purpose: CP-SAT's portfolio then includes the
    # reduced-costs and LP-heavy subsolvers that close the gap on the two-truck instances
    # (50 x 2, seed 2: 2 workers left a 27 % gap after 120 s, 8 proved the optimum in
    # 11 s). Linearization level 2 (more cuts) halved that time.
    solver.parameters.num_workers = workers
    solver.parameters.linearization_level = 2
    began = time.perf_counter()
    status = solver.solve(model)
    solve_s = time.perf_counter() - began
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Optimum(name, solver.best_objective_bound, (), math.inf, solve_s)
    routes = _routes(n, {key: solver.boolean_value(lit) for key, lit in arcs.items()})
    return Optimum(name, solver.best_objective_bound, routes, _length(dist, routes), solve_s)


def _routes(n: int, chosen: dict[tuple[int, int], bool]) -> tuple[tuple[int, ...], ...]:
    """The bins of each route in driving order, from the chosen arcs."""
    following = {i: j for (i, j), on in chosen.items() if on and i != 0}
    routes = []
    for j in range(1, n):
        if chosen[0, j]:
            route = [j]
            while following[route[-1]] != 0:
                route.append(following[route[-1]])
            routes.append(tuple(node - 1 for node in route))
    return tuple(routes)


def _length(dist: FloatArray, routes: tuple[tuple[int, ...], ...]) -> float:
    """Total unrounded length of the routes, depot to depot."""
    total = 0.0
    for route in routes:
        nodes = [0, *(stop + 1 for stop in route), 0]
        total += sum(float(dist[a, b]) for a, b in pairwise(nodes))
    return total


def fits(problem: PlanProblem, routes: tuple[tuple[int, ...], ...]) -> bool:
    """Whether the routes serve every bin once within the trucks, capacity and shift."""
    _, times = travel_matrices(problem)
    served = sorted(stop for route in routes for stop in route)
    if served != list(range(len(problem.stops))) or len(routes) > problem.trucks:
        return False
    for route in routes:
        nodes = [0, *(stop + 1 for stop in route), 0]
        drive_s = sum(float(times[a, b]) for a, b in pairwise(nodes))
        # Timed as the baseline times a route: driving plus one service per bin.
        if drive_s + problem.service_s * len(route) > problem.shift_s:
            return False
        if sum(problem.stops[stop].load_l for stop in route) > problem.capacity_l:
            return False
    return True


def run_case(bins: int, trucks: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One bench.routes instance: baseline, planner and the proven optimum."""
    problem = instance(bins, trucks, seed, args.service_s, args.speed_kmh, args.detour)
    baseline_m = nearest_neighbour(problem).distance_m
    # The planner exactly as bench.routes runs it by default (PlanOptions' defaults).
    planned = None if args.no_planner else plan_routes(problem, PlanOptions())
    best = solve_optimum(problem, args.time_limit, args.workers, planned)
    target_m = RATIO_TARGET * baseline_m
    feasible = bool(best.routes) and fits(problem, best.routes)
    if best.lower_bound_m > target_m:
        verdict = "impossible"  # no route serving every bin is that short
    elif feasible and best.routes_m <= target_m:
        verdict = "reachable"  # the routes found are that short and fit the instance
    else:
        verdict = "open"
    run: dict[str, Any] = {
        "bins": bins,
        "trucks": trucks,
        "seed": seed,
        "capacity_l": problem.capacity_l,
        "total_load_l": round(sum(s.load_l for s in problem.stops), 1),
        "shift_h": round(problem.shift_s / 3600, 2),
        "baseline_km": round(baseline_m / 1000, 3),
        "target_km": round(target_m / 1000, 3),
        "status": best.status,
        "bound_km": round(best.lower_bound_m / 1000, 3),
        "bound_ratio": round(best.lower_bound_m / baseline_m, 4),
        "best_km": round(best.routes_m / 1000, 3) if best.routes else None,
        "best_ratio": round(best.routes_m / baseline_m, 4) if best.routes else None,
        "best_fits": feasible,
        "best_routes": len(best.routes),
        "verdict": verdict,
        "solve_s": round(best.solve_s, 1),
    }
    if planned is not None:
        run["planner_km"] = round(planned.distance_m / 1000, 3)
        run["planner_ratio"] = round(planned.distance_m / baseline_m, 4)
        run["planner_served"] = bins - len(planned.unserved)
        # How far the planner is above the optimum (an upper estimate while not OPTIMAL).
        run["planner_over_bound"] = round(planned.distance_m / best.lower_bound_m - 1, 4)
    return run


def main() -> None:
    """Solve every instance, print a table, then the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bins", type=int, default=50)
    parser.add_argument("--trucks", type=_ints, default=[1, 2])
    parser.add_argument("--seeds", type=int, default=3, help="instances per case, as bench.routes")
    parser.add_argument("--time-limit", type=float, default=300.0, help="CP-SAT, per instance (s)")
    parser.add_argument("--workers", type=int, default=8, help="CP-SAT workers")
    parser.add_argument("--no-planner", action="store_true", help="skip the OR-Tools planner")
    parser.add_argument("--service-s", type=float, default=60.0)
    parser.add_argument("--speed-kmh", type=float, default=25.0)
    parser.add_argument("--detour", type=float, default=1.3)
    args = parser.parse_args()

    began = time.perf_counter()
    runs: list[dict[str, Any]] = []
    print(
        "| bins | trucks | seed | baseline km | planner km (ratio) | optimum km (ratio) "
        "| CP-SAT | 0.8 x baseline | verdict | solve s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for trucks in args.trucks:
        for seed in range(args.seeds):
            run = run_case(args.bins, trucks, seed, args)
            runs.append(run)
            planner = (
                f"{run['planner_km']:.2f} ({run['planner_ratio']:.3f})"
                if "planner_km" in run
                else "-"
            )
            # While not OPTIMAL the optimum lies between the bound and the best found.
            optimum = f"{run['bound_km']:.2f} ({run['bound_ratio']:.3f})"
            if run["status"] != "OPTIMAL" and run["best_km"] is not None:
                optimum = f">= {optimum}, best {run['best_km']:.2f}"
            print(
                f"| {args.bins} | {trucks} | {seed} | {run['baseline_km']:.2f} | {planner} "
                f"| {optimum} | {run['status']} | {run['target_km']:.2f} | {run['verdict']} "
                f"| {run['solve_s']:.1f} |",
                flush=True,
            )
    summary = {
        "bench": "routes_optimum",
        "date": date.today().isoformat(),
        "args": dict(vars(args)),
        "ratio_target": RATIO_TARGET,
        "impossible": sum(1 for r in runs if r["verdict"] == "impossible"),
        "reachable": sum(1 for r in runs if r["verdict"] == "reachable"),
        "open": sum(1 for r in runs if r["verdict"] == "open"),
        "all_optimal": all(r["status"] == "OPTIMAL" for r in runs),
        "total_s": round(time.perf_counter() - began, 1),
        "runs": runs,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
