"""Scenarios: what happens to the fleet and when (in model seconds since the start)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from simulators.fleet import Building, Fleet
from simulators.models import FIRE_ALPHA_MEDIUM_KW_S2, fire_temp_rise_c

SCENARIOS = ("demo", "quiet")

DEMO_FIRE_AT_S = 30.0
DEMO_FAST_FILL_AT_S = 30.0
DEMO_FAST_FILL_BINS = 5
# The fire starts this close (metres, horizontally) to one detector of the building.
FIRE_ORIGIN_RADIUS_M = (0.5, 1.5)


@dataclass(frozen=True, slots=True)
class FireEvent:
    """A t-squared fire igniting in one building at model time `t0`."""

    t0: float
    zone: str
    district: str
    # Horizontal distance from the fire to each detector of the building, nearest first.
    distances_m: tuple[tuple[str, float], ...]
    alpha_kw_s2: float = FIRE_ALPHA_MEDIUM_KW_S2

    @property
    def nearest_id(self) -> str:
        """The detector that will alarm first."""
        return self.distances_m[0][0]


@dataclass(frozen=True, slots=True)
class FastFillEvent:
    """Bins that start filling fast at `t0` and are never emptied (a market-day rush)."""

    t0: float
    bin_ids: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    """The events of one run, with lookups the publisher needs per reading."""

    name: str
    fires: tuple[FireEvent, ...] = ()
    fast_fills: tuple[FastFillEvent, ...] = ()
    # (t0, radius, alpha) of every fire each affected detector is exposed to.
    _exposure: dict[str, tuple[tuple[float, float, float], ...]] = field(
        init=False, repr=False, compare=False
    )
    _fast_fill_from: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exposure: dict[str, list[tuple[float, float, float]]] = {}
        for fire in self.fires:
            for dev_id, radius in fire.distances_m:
                exposure.setdefault(dev_id, []).append((fire.t0, radius, fire.alpha_kw_s2))
        object.__setattr__(self, "_exposure", {k: tuple(v) for k, v in exposure.items()})
        fast: dict[str, float] = {}
        for event in self.fast_fills:
            for bin_id in event.bin_ids:
                fast[bin_id] = min(event.t0, fast.get(bin_id, math.inf))
        object.__setattr__(self, "_fast_fill_from", fast)

    def fire_rise_c(self, device_id: str, t: float) -> float:
        """Temperature rise at a detector from the scenario's fires at model time `t`."""
        exposures = self._exposure.get(device_id)
        if not exposures:
            return 0.0
        return max(fire_temp_rise_c(t - t0, radius, alpha) for t0, radius, alpha in exposures)

    def fast_fill_from(self, device_id: str) -> float | None:
        """Model time a bin starts filling fast, if the scenario makes it."""
        return self._fast_fill_from.get(device_id)

    def crews_for(self, device_id: str) -> bool:
        """Whether crews empty this bin (not for the scenario's rush bins: they stay full)."""
        return device_id not in self._fast_fill_from

    @property
    def highlighted(self) -> frozenset[str]:
        """Devices the scenario is about, whose threshold crossings deserve an INFO log."""
        ids = set(self._exposure) | set(self._fast_fill_from)
        return frozenset(ids)

    def plan(self) -> list[str]:
        """Human-readable description of what will happen, for the start-up log."""
        if self.is_quiet:
            return [f"scenario {self.name}: no events, ambient only"]
        lines: list[str] = []
        for fire in self.fires:
            lines.append(
                f"scenario {self.name}: at t={fire.t0:.0f}s a fire starts in building "
                f"{fire.zone} ({fire.district}), nearest detector {fire.nearest_id} "
                f"({fire.distances_m[0][1]:.1f} m)"
            )
        for event in self.fast_fills:
            lines.append(
                f"scenario {self.name}: at t={event.t0:.0f}s {len(event.bin_ids)} bins start "
                f"filling fast: {', '.join(event.bin_ids)}"
            )
        return lines

    @property
    def is_quiet(self) -> bool:
        """True when nothing happens but ambient behaviour."""
        return not self.fires and not self.fast_fills

    def timeline(self, fleet: Fleet) -> list[tuple[float, str]]:
        """(model time, message) for each event, sorted, to log as the run reaches them."""
        events: list[tuple[float, str]] = []
        for fire in self.fires:
            detectors = ", ".join(
                f"{dev_id} ({radius:.1f} m)" for dev_id, radius in fire.distances_m
            )
            events.append(
                (
                    fire.t0,
                    f"t={fire.t0:.0f}s fire started in building {fire.zone} ({fire.district}): "
                    f"{detectors}",
                )
            )
        for event in self.fast_fills:
            bins = ", ".join(f"{b} ({fleet.by_id[b].district})" for b in event.bin_ids)
            events.append(
                (
                    event.t0,
                    f"t={event.t0:.0f}s {len(event.bin_ids)} bins started filling fast "
                    f"(no crew pickups): {bins}",
                )
            )
        return sorted(events, key=lambda e: e[0])


def _fire_in(building: Building, fleet: Fleet, t0: float, rng: random.Random) -> FireEvent:
    """Ignite a fire next to one detector of `building`."""
    first = fleet.by_id[rng.choice(building.detector_ids)]
    radius = rng.uniform(*FIRE_ORIGIN_RADIUS_M)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    origin = (first.x_m + radius * math.cos(angle), first.y_m + radius * math.sin(angle))
    distances = []
    for dev_id in building.detector_ids:
        device = fleet.by_id[dev_id]
        distances.append((dev_id, round(math.dist(origin, (device.x_m, device.y_m)), 2)))
    distances.sort(key=lambda item: item[1])
    return FireEvent(
        t0=t0, zone=building.zone, district=building.district, distances_m=tuple(distances)
    )


def build_scenario(name: str, fleet: Fleet, seed: int = 7) -> Scenario:
    """The named scenario for this fleet; deterministic for a seed."""
    if name == "quiet":
        return Scenario(name)
    if name != "demo":
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    rng = random.Random(f"sigap-scenario:{name}:{seed}")
    fires: list[FireEvent] = []
    if fleet.buildings:
        # Prefer a building with 3+ detectors so a second detector can confirm the fire.
        roomy = [b for b in fleet.buildings if len(b.detector_ids) >= 3]
        building = rng.choice(roomy or list(fleet.buildings))
        fires.append(_fire_in(building, fleet, DEMO_FIRE_AT_S, rng))
    fast: list[FastFillEvent] = []
    bins = [d.id for d in fleet.of_kind("bin")]
    if bins:
        chosen = sorted(rng.sample(bins, min(DEMO_FAST_FILL_BINS, len(bins))))
        fast.append(FastFillEvent(DEMO_FAST_FILL_AT_S, tuple(chosen)))
    return Scenario(name, tuple(fires), tuple(fast))
