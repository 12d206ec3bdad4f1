"""Pickup routes: OR-Tools planner vs a nearest-neighbour baseline on generated instances
around Sampit (see bench/routes/README.md).

Usage: .venv/bin/python -m bench.routes [--sizes 50,200,500,1000] [--trucks 1,2,4,8]
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date
from typing import Any

from bench.routes.instances import instance
from pickup_routes.baseline import nearest_neighbour
from pickup_routes.planner import PlanOptions, plan_routes

RATIO_TARGET = 0.8
TIME_TARGET_S = 10.0
TIME_TARGET_BINS = 500


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def run_case(bins: int, trucks: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One instance through both planners."""
    problem = instance(bins, trucks, seed, args.service_s, args.speed_kmh, args.detour)
    options = PlanOptions(
        time_limit_s=args.time_limit,
        max_time_limit_s=args.max_time_limit,
        first_solutions=tuple(args.first_solution.split(",")),
        metaheuristic=args.metaheuristic,
    )
    began = time.perf_counter()
    planned = plan_routes(problem, options)
    plan_s = time.perf_counter() - began
    began = time.perf_counter()
    greedy = nearest_neighbour(problem)
    greedy_s = time.perf_counter() - began
    return {
        "bins": bins,
        "trucks": trucks,
        "seed": seed,
        "capacity_l": problem.capacity_l,
        "shift_h": round(problem.shift_s / 3600, 2),
        "served": bins - len(planned.unserved),
        "baseline_served": bins - len(greedy.unserved),
        "km": round(planned.distance_m / 1000, 2),
        "baseline_km": round(greedy.distance_m / 1000, 2),
        "ratio": round(planned.distance_m / greedy.distance_m, 4),
        "plan_s": round(plan_s, 2),
        "time_limit_s": planned.time_limit_s,
        "baseline_s": round(greedy_s, 3),
        "routes": len(planned.routes),
        "status": planned.status,
        "first_solutions": planned.stats,
    }


def main() -> None:
    """Run every case and print a table, then the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=_ints, default=[50, 200, 500, 1000])
    parser.add_argument("--trucks", type=_ints, default=[1, 2, 4, 8])
    parser.add_argument("--seeds", type=int, default=3, help="instances per case")
    parser.add_argument("--time-limit", type=float, default=None, help="fixed search time (s)")
    parser.add_argument(
        "--max-time-limit", type=float, default=8.0, help="cap of the size-scaled limit (s)"
    )
    parser.add_argument("--service-s", type=float, default=60.0)
    parser.add_argument("--speed-kmh", type=float, default=25.0)
    parser.add_argument("--detour", type=float, default=1.3)
    parser.add_argument("--first-solution", default="PARALLEL_SAVINGS,CHRISTOFIDES")
    parser.add_argument("--metaheuristic", default="GUIDED_LOCAL_SEARCH")
    args = parser.parse_args()

    runs: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    header = "| bins | trucks | served | OR-Tools km | baseline km | ratio (min..max) | plan s |"
    print(header)
    print("|---|---|---|---|---|---|---|")
    for bins in args.sizes:
        for trucks in args.trucks:
            these = [run_case(bins, trucks, seed, args) for seed in range(args.seeds)]
            runs.extend(these)
            ratios = [r["ratio"] for r in these]
            case = {
                "bins": bins,
                "trucks": trucks,
                "instances": len(these),
                "all_served": all(r["served"] == r["baseline_served"] == bins for r in these),
                "km": round(statistics.fmean(r["km"] for r in these), 2),
                "baseline_km": round(statistics.fmean(r["baseline_km"] for r in these), 2),
                "ratio": round(statistics.fmean(ratios), 3),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "plan_s": round(statistics.fmean(r["plan_s"] for r in these), 2),
                "plan_s_max": max(r["plan_s"] for r in these),
                "time_limit_s": these[0]["time_limit_s"],
            }
            cases.append(case)
            served = "all" if case["all_served"] else "NOT ALL"
            print(
                f"| {bins} | {trucks} | {served} | {case['km']:.1f} | {case['baseline_km']:.1f} "
                f"| {case['ratio']:.3f} ({case['ratio_min']:.3f}..{case['ratio_max']:.3f}) "
                f"| {case['plan_s']:.1f} (max {case['plan_s_max']:.1f}) |",
                flush=True,
            )
    timed = [r["plan_s"] for r in runs if r["bins"] == TIME_TARGET_BINS]
    summary = {
        "bench": "routes",
        "date": date.today().isoformat(),
        "args": {k: v for k, v in vars(args).items()},
        "targets": {"ratio_max": RATIO_TARGET, f"plan_s_{TIME_TARGET_BINS}_max": TIME_TARGET_S},
        "cases_meeting_ratio": sum(1 for c in cases if c["ratio"] <= RATIO_TARGET),
        "cases": cases,
        "mean_ratio": round(statistics.fmean(c["ratio"] for c in cases), 3),
        "worst_ratio": max(c["ratio"] for c in cases),
        f"max_plan_s_{TIME_TARGET_BINS}": max(timed) if timed else None,
        "runs": runs,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
