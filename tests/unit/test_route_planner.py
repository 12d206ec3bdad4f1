"""The pure route planner and the nearest-neighbour baseline: constraints, coverage,
unserved bins with reasons, supplied distance matrices."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from pickup_routes.baseline import nearest_neighbour
from pickup_routes.planner import PlanOptions, plan_routes
from pickup_routes.problem import PlanningError, PlanProblem, PlanResult, PlanStop, travel_matrices

DEPOT = (-2.538, 112.950)
# Stop after a fixed number of solutions: the same answer on any machine, at any load.
REPEATABLE = PlanOptions(time_limit_s=30, solution_limit=100)


def scattered(n: int, seed: int = 1, load_l: float = 600.0, must_every: int = 1) -> list[PlanStop]:
    """Bins within a few km of the depot."""
    rng = random.Random(seed)
    return [
        PlanStop(
            f"bin-{i:03d}",
            DEPOT[0] + rng.gauss(0, 0.012),
            DEPOT[1] + rng.gauss(0, 0.012),
            load_l,
            must=i % must_every == 0,
        )
        for i in range(n)
    ]


def problem(stops: list[PlanStop], **changes: object) -> PlanProblem:
    values: dict[str, object] = {
        "depot_lat": DEPOT[0],
        "depot_lon": DEPOT[1],
        "stops": stops,
        "trucks": 2,
        "capacity_l": 15_000.0,
        "shift_s": 8 * 3600.0,
        "service_s": 90.0,
        "speed_kmh": 25.0,
        "detour_factor": 1.3,
    }
    values.update(changes)
    return PlanProblem(**values)  # type: ignore[arg-type]


def assert_feasible(p: PlanProblem, result: PlanResult) -> None:
    """Capacity, shift, timing and one visit per served bin, recomputed independently."""
    dist, times = travel_matrices(p)
    seen: list[int] = []
    for route in result.routes:
        assert route.load_l <= p.capacity_l + 1e-6
        assert route.duration_s <= p.shift_s + 1  # integer seconds inside the solver
        clock, here, load, distance = 0.0, 0, 0.0, 0.0
        for visit in route.visits:
            node = visit.stop + 1
            clock += times[here, node] + (p.service_s if here else 0.0)
            load += p.stops[visit.stop].load_l
            distance += dist[here, node]
            assert visit.arrival_s == pytest.approx(clock, abs=len(route.visits) + 1)
            assert visit.load_after_l == pytest.approx(load)
            here = node
            seen.append(visit.stop)
        assert route.distance_m == pytest.approx(distance + dist[here, 0])
    served = set(seen)
    assert len(seen) == len(served), "a bin visited twice"
    assert served | {u.stop for u in result.unserved} == set(range(len(p.stops)))
    assert not served & {u.stop for u in result.unserved}
    assert result.distance_m == pytest.approx(sum(r.distance_m for r in result.routes))


def test_every_bin_collected_within_capacity_and_shift() -> None:
    p = problem(scattered(40), trucks=3, capacity_l=9_000.0)  # 24,000 L over 27,000 L
    result = plan_routes(p, REPEATABLE)
    assert_feasible(p, result)
    assert result.unserved == ()
    assert 2 <= len(result.routes) <= 3  # 9,000 L each: at least 2 trucks are needed
    assert all(v.arrival_s > 0 for r in result.routes for v in r.visits)


def test_the_shift_limits_a_route() -> None:
    # Capacity is no limit here; a 30-minute shift is.
    p = problem(scattered(30), trucks=1, capacity_l=100_000.0, shift_s=1800.0)
    result = plan_routes(p, REPEATABLE)
    assert_feasible(p, result)
    assert result.routes and result.unserved
    assert result.routes[0].duration_s <= 1800
    assert all("no truck had room or time left" in u.reason for u in result.unserved)


def test_unserved_bins_are_listed_with_reasons() -> None:
    stops = [
        PlanStop("near", DEPOT[0] + 0.002, DEPOT[1], 600.0),
        PlanStop("huge", DEPOT[0] - 0.002, DEPOT[1], 2_000.0),  # more than a truck takes
        PlanStop("far", DEPOT[0] + 0.5, DEPOT[1], 600.0),  # 55 km away: 2 x 2.9 h drive
    ]
    p = problem(stops, trucks=1, capacity_l=1_500.0, shift_s=4 * 3600.0)
    result = plan_routes(p, REPEATABLE)
    assert_feasible(p, result)
    assert [[v.stop for v in r.visits] for r in result.routes] == [[0]]
    reasons = {p.stops[u.stop].id: u.reason for u in result.unserved}
    assert reasons["huge"] == "holds 2000 L, more than a truck takes (1500 L)"
    assert reasons["far"].startswith("there and back takes")
    assert "longer than the 240 min shift" in reasons["far"]


def test_full_bins_go_before_predicted_ones() -> None:
    # Room for 10 of 20 bins; the 10 full ones (every other) are farther out.
    stops = [
        PlanStop(
            f"b{i}",
            DEPOT[0] + (0.03 if i % 2 == 0 else 0.003) * np.cos(i),
            DEPOT[1] + (0.03 if i % 2 == 0 else 0.003) * np.sin(i),
            600.0,
            must=i % 2 == 0,
        )
        for i in range(20)
    ]
    p = problem(stops, trucks=1, capacity_l=6_000.0)
    result = plan_routes(p, REPEATABLE)
    assert_feasible(p, result)
    served = {p.stops[v.stop].id for r in result.routes for v in r.visits}
    assert served == {f"b{i}" for i in range(0, 20, 2)}


def test_a_supplied_distance_matrix_is_used() -> None:
    # Geographically the bins lie on a line east of the depot, but the matrix (one-way
    # streets, a bridge) makes D -> c -> a -> b -> D the only cheap tour.
    stops = [
        PlanStop(name, DEPOT[0], DEPOT[1] + 0.01 * (k + 1), 100.0) for k, name in enumerate("abc")
    ]
    big = 10_000.0
    m = np.full((4, 4), big)
    np.fill_diagonal(m, 0.0)
    m[0, 3], m[3, 1], m[1, 2], m[2, 0] = 100.0, 200.0, 300.0, 400.0
    p = problem(stops, trucks=1, distances_m=m)
    result = plan_routes(p, REPEATABLE)
    assert_feasible(p, result)
    assert [p.stops[v.stop].id for v in result.routes[0].visits] == ["c", "a", "b"]
    assert result.distance_m == 1000.0
    assert [v.leg_m for v in result.routes[0].visits] == [100.0, 200.0, 300.0]
    # Travel time follows the matrix at the planning speed (25 km/h = 6.94 m/s).
    assert result.routes[0].visits[0].arrival_s == pytest.approx(100 / (25 / 3.6), abs=1)


def test_matrix_tour_is_optimal_on_a_small_instance() -> None:
    rng = np.random.default_rng(7)
    m = rng.integers(100, 5000, size=(7, 7)).astype(float)
    np.fill_diagonal(m, 0.0)
    stops = [PlanStop(f"s{i}", DEPOT[0], DEPOT[1], 10.0) for i in range(6)]
    p = problem(stops, trucks=1, distances_m=m)
    best = min(
        m[0, order[0]] + sum(m[a, b] for a, b in itertools.pairwise(order)) + m[order[-1], 0]
        for order in itertools.permutations(range(1, 7))
    )
    assert plan_routes(p, REPEATABLE).distance_m == best


def test_repeatable_with_a_solution_limit() -> None:
    p = problem(scattered(40, seed=3), trucks=3, capacity_l=9_000.0)
    first = plan_routes(p, REPEATABLE)
    again = plan_routes(p, REPEATABLE)
    assert [[v.stop for v in r.visits] for r in first.routes] == [
        [v.stop for v in r.visits] for r in again.routes
    ]


def test_better_than_the_nearest_neighbour_baseline() -> None:
    p = problem(scattered(60, seed=5), trucks=2, capacity_l=20_000.0)
    planned = plan_routes(p, REPEATABLE)
    greedy = nearest_neighbour(p)
    assert planned.unserved == greedy.unserved == ()
    assert planned.distance_m < greedy.distance_m


def test_baseline_respects_the_same_constraints() -> None:
    p = problem(scattered(50, seed=2), trucks=2, capacity_l=9_000.0, shift_s=3600.0)
    result = nearest_neighbour(p)
    assert_feasible(p, result)
    assert result.unserved  # 30,000 L of bins, 18,000 L of trucks


def test_no_bins_no_routes() -> None:
    result = plan_routes(problem([]))
    assert result.routes == () and result.unserved == () and result.distance_m == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trucks": 0}, "at least one truck"),
        ({"capacity_l": 0.0}, "must be positive"),
        ({"distances_m": np.zeros((3, 3))}, "distances_m must be 4 x 4"),
        ({"distances_m": -np.ones((4, 4))}, "finite, non-negative"),
        ({"durations_s": np.full((4, 4), np.inf)}, "durations_s must hold finite"),
        ({"detour_factor": 0.5}, "detour factor >= 1"),
    ],
)
def test_malformed_problems_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(PlanningError, match=message):
        plan_routes(problem(scattered(3), **changes))
