"""Generated pickup instances around Sampit: a depot near the centre and bins scattered
over Mentawa Baru Ketapang, Baamang and Seranau (the simulators' district centres)."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from pickup_routes.baseline import nearest_neighbour
from pickup_routes.problem import PlanProblem, PlanStop
from simulators.fleet import DISTRICTS, METRES_PER_DEG_LAT

DEPOT = (-2.538, 112.950)
URBAN = tuple(d for d in DISTRICTS if d.name in {"Mentawa Baru Ketapang", "Baamang", "Seranau"})
# Bins spread wider than the simulators' devices: they line the streets of the whole
# kecamatan, not just its centre.
SPREAD_FACTOR = 2.0
BIN_VOLUME_L = 660.0
SHIFT_S = 8 * 3600.0


def instance(
    bins: int,
    trucks: int,
    seed: int,
    service_s: float = 60.0,
    speed_kmh: float = 25.0,
    detour_factor: float = 1.3,
) -> PlanProblem:
    """A feasible instance: every bin fits the fleet, so both planners serve all of them
    and their distances compare like for like.

    Capacity: 1.1 x the total load / trucks, plus one bin (so that the greedy baseline,
    which cannot pack perfectly, still fits everything). Shift: 8 h, or 1.15 x the
    baseline's longest route when that is longer (1,000 bins on one truck take days).
    """
    rng = random.Random(f"{bins}/{trucks}/{seed}")
    weights = [d.weight for d in URBAN]
    stops: list[PlanStop] = []
    for i in range(bins):
        district = rng.choices(URBAN, weights)[0]
        sigma = district.spread_m * SPREAD_FACTOR
        east = max(-2.5 * sigma, min(2.5 * sigma, rng.gauss(0.0, sigma)))
        north = max(-2.5 * sigma, min(2.5 * sigma, rng.gauss(0.0, sigma)))
        lat = district.lat + north / METRES_PER_DEG_LAT
        lon = district.lon + east / (METRES_PER_DEG_LAT * math.cos(math.radians(district.lat)))
        fill = rng.uniform(60.0, 100.0)  # full now, or predicted full during the shift
        stops.append(PlanStop(f"bin-{i:04d}", lat, lon, BIN_VOLUME_L * fill / 100, fill >= 90))
    total = sum(s.load_l for s in stops)
    problem = PlanProblem(
        depot_lat=DEPOT[0],
        depot_lon=DEPOT[1],
        stops=stops,
        trucks=trucks,
        capacity_l=math.ceil(1.1 * total / trucks + BIN_VOLUME_L),
        shift_s=math.inf,
        service_s=service_s,
        speed_kmh=speed_kmh,
        detour_factor=detour_factor,
    )
    longest = max(r.duration_s for r in nearest_neighbour(problem).routes)
    return replace(problem, shift_s=max(SHIFT_S, math.ceil(1.15 * longest)))
