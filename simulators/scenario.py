"""Scenarios: what happens to the fleet and when (in model seconds since the start).

A scenario file (simulators/scenarios/*.toml, see scenario_file.py) is resolved against a
fleet and a seed into a `Scenario`: concrete devices, times and per-device lookups the
reading source and the publisher ask on every reading. Slow processes (a regional haze,
dust drifting a detector) run on clocks of their own, `compression` times faster than
model time (simulators/haze.py); events and readings stay on model time.
"""

from __future__ import annotations

import fnmatch
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from simulators.fleet import Building, Fleet, SimDevice, generate_fleet
from simulators.haze import (
    HAZE_PEAK_HOUR,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    HazeEpisode,
    HazeField,
    Rain,
    draw_infiltration,
    make_episode,
)
from simulators.models import (
    FAST_FILL_CAP_PCT,
    FAST_FILL_PCT_S,
    FIRE_ALPHA_MEDIUM_KW_S2,
    FIRE_GROWTH_KW_S2,
    bin_fire_rise_c,
    fire_temp_rise_c,
)
from simulators.scenario_file import (
    BatterySpec,
    BinFireSpec,
    BinsFillSpec,
    DriftSpec,
    ExpectSpec,
    FaultSpec,
    FireSpec,
    GatewayOfflineSpec,
    HazeSpec,
    KnockOverSpec,
    RainSpec,
    ScenarioSpec,
    Selection,
    SilentSpec,
    load_scenario_spec,
    shipped_scenarios,
)

SCENARIOS = shipped_scenarios()

# The fire starts this close (metres, horizontally) to one detector of the building.
FIRE_ORIGIN_RADIUS_M = (0.5, 1.5)
# A haze without rain or end logs this many mornings at most.
MAX_LOGGED_DAYS = 30


@dataclass(frozen=True, slots=True)
class FireEvent:
    """A t-squared fire igniting in one building at model time `t0`."""

    t0: float
    zone: str
    district: str
    # Horizontal distance from the fire to each detector of the building, nearest first.
    distances_m: tuple[tuple[str, float], ...]
    alpha_kw_s2: float = FIRE_ALPHA_MEDIUM_KW_S2
    growth: str = "medium"

    @property
    def nearest_id(self) -> str:
        """The detector that will alarm first."""
        return self.distances_m[0][0]


@dataclass(frozen=True, slots=True)
class FastFillEvent:
    """Bins that start filling fast at `t0` and are never emptied (a market-day rush)."""

    t0: float
    bin_ids: tuple[str, ...]
    reach_pct: float = FAST_FILL_CAP_PCT
    rate_pct_s: float = FAST_FILL_PCT_S


@dataclass(frozen=True, slots=True)
class Window:
    """Model-time interval [t0, t1) during which something applies to some devices."""

    t0: float
    t1: float
    device_ids: tuple[str, ...]
    what: str  # "silent", "knock_over", "bin_fire", "battery", or a fault kind
    growth: str = ""  # bin_fire
    level_pct: float | None = None  # battery
    level_v: float | None = None
    over_s: float = 0.0
    skew_s: float = 0.0  # clock_skew
    size: int = 0  # burst
    note: str = ""  # what the log line says

    def covers(self, t: float) -> bool:
        """True while the window applies at model time `t`."""
        return self.t0 <= t < self.t1


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """Dust settling in detectors' chambers from model time `t0`: a linear creep."""

    t0: float
    device_ids: tuple[str, ...]
    rate_pct_m_per_day: float
    compression: float = 1.0  # drift-clock seconds per model second

    def pct_m(self, t: float) -> float:
        """How far the clean-air reading has crept up (%/m) by model time `t`."""
        return self.rate_pct_m_per_day * max(0.0, t - self.t0) * self.compression / SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class DistrictExpectation:
    """A region-wide alert a district must end up with (e.g. `haze.regional`)."""

    alerts: frozenset[str]
    category: str | None = None  # the ISPU category it reports
    cleared: bool = False  # cleared again by the end of the run


@dataclass(frozen=True)
class Scenario:
    """The events of one run, with lookups the publisher needs per reading."""

    name: str
    fires: tuple[FireEvent, ...] = ()
    fast_fills: tuple[FastFillEvent, ...] = ()
    windows: tuple[Window, ...] = ()
    # label -> devices the labelled event hit; expectations: devices -> alert kinds.
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    expected: dict[str, frozenset[str]] = field(default_factory=dict)
    expected_rejections: dict[str, frozenset[str]] = field(default_factory=dict)
    spec: ScenarioSpec | None = field(default=None, compare=False)
    haze: HazeField | None = field(default=None, compare=False)
    drifts: tuple[DriftEvent, ...] = ()
    # district -> region-wide alerts; device -> alert kind patterns it must never raise.
    expected_districts: dict[str, DistrictExpectation] = field(default_factory=dict)
    forbidden: dict[str, frozenset[str]] = field(default_factory=dict)
    # (t0, radius, alpha) of every fire each affected detector is exposed to.
    _exposure: dict[str, tuple[tuple[float, float, float], ...]] = field(
        init=False, repr=False, compare=False
    )
    _fast_fill: dict[str, FastFillEvent] = field(init=False, repr=False, compare=False)
    _windows: dict[str, tuple[Window, ...]] = field(init=False, repr=False, compare=False)
    _drift: dict[str, tuple[DriftEvent, ...]] = field(init=False, repr=False, compare=False)
    _highlighted: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exposure: dict[str, list[tuple[float, float, float]]] = {}
        for fire in self.fires:
            for dev_id, radius in fire.distances_m:
                exposure.setdefault(dev_id, []).append((fire.t0, radius, fire.alpha_kw_s2))
        object.__setattr__(self, "_exposure", {k: tuple(v) for k, v in exposure.items()})
        fast: dict[str, FastFillEvent] = {}
        for event in self.fast_fills:
            for bin_id in event.bin_ids:
                if bin_id not in fast or event.t0 < fast[bin_id].t0:
                    fast[bin_id] = event
        object.__setattr__(self, "_fast_fill", fast)
        windows: dict[str, list[Window]] = {}
        for window in self.windows:
            for dev_id in window.device_ids:
                windows.setdefault(dev_id, []).append(window)
        object.__setattr__(self, "_windows", {k: tuple(v) for k, v in windows.items()})
        drift: dict[str, list[DriftEvent]] = {}
        for creep in self.drifts:
            for dev_id in creep.device_ids:
                drift.setdefault(dev_id, []).append(creep)
        object.__setattr__(self, "_drift", {k: tuple(v) for k, v in drift.items()})
        # Asked once per reading: computed once here.
        touched = set(self._exposure) | set(self._fast_fill) | set(self._windows) | set(drift)
        object.__setattr__(self, "_highlighted", frozenset(touched))

    # --- per-reading lookups (hot path: a dict miss for most devices) ---------------------

    def fire_rise_c(self, device_id: str, t: float) -> float:
        """Temperature rise at a detector from the scenario's fires at model time `t`."""
        exposures = self._exposure.get(device_id)
        if not exposures:
            return 0.0
        return max(fire_temp_rise_c(t - t0, radius, alpha) for t0, radius, alpha in exposures)

    def fast_fill_from(self, device_id: str) -> float | None:
        """Model time a bin starts filling fast, if the scenario makes it."""
        event = self._fast_fill.get(device_id)
        return event.t0 if event is not None else None

    def fast_fill(self, device_id: str) -> FastFillEvent | None:
        """The rush a bin takes part in, if any."""
        return self._fast_fill.get(device_id)

    def crews_for(self, device_id: str) -> bool:
        """Whether crews empty this bin (not for the scenario's rush bins: they stay full)."""
        return device_id not in self._fast_fill

    def windows_for(self, device_id: str) -> tuple[Window, ...]:
        """Every timed effect on a device (silences, faults, bin fires...)."""
        return self._windows.get(device_id, ())

    def active(self, device_id: str, t: float) -> list[Window]:
        """The timed effects applying to a device at model time `t`."""
        windows = self._windows.get(device_id)
        if not windows:
            return []
        return [w for w in windows if w.covers(t)]

    def drift_pct_m(self, device_id: str, t: float) -> float:
        """How far dust has pushed a detector's clean-air reading up (%/m) at model time `t`."""
        events = self._drift.get(device_id)
        if not events:
            return 0.0
        return sum(e.pct_m(t) for e in events)

    def forbids(self, device_id: str, kind: str) -> bool:
        """True if the scenario says this device must never raise an alert of this kind."""
        return any(fnmatch.fnmatchcase(kind, p) for p in self.forbidden.get(device_id, ()))

    def clear_air(self) -> Scenario:
        """The same scenario without its haze (to compare a fire in haze with one in clear air)."""
        return replace(self, haze=None, expected_districts={})

    def bin_fire_rise_c(self, device_id: str, t: float) -> float:
        """Temperature rise at a bin's sensor from a fire inside it."""
        rise = 0.0
        for w in self.windows_for(device_id):
            if w.what == "bin_fire" and t >= w.t0:
                rise = max(rise, bin_fire_rise_c(t - w.t0, FIRE_GROWTH_KW_S2[w.growth]))
        return rise

    def battery_limit(self, device_id: str, t: float, kind: str) -> float | None:
        """The most a drained battery shows at `t` (% for bins, V for detectors), if drained."""
        limit: float | None = None
        for w in self.windows_for(device_id):
            if w.what != "battery" or t < w.t0:
                continue
            target = w.level_pct if kind == "bin" else w.level_v
            if target is None:
                continue
            start = 100.0 if kind == "bin" else 9.5
            frac = 1.0 if w.over_s <= 0 else min(1.0, (t - w.t0) / w.over_s)
            value = start + (target - start) * frac
            limit = value if limit is None else min(limit, value)
        return limit

    # --- descriptions ---------------------------------------------------------------------

    @property
    def highlighted(self) -> frozenset[str]:
        """Devices the scenario is about, whose threshold crossings deserve an INFO log."""
        return self._highlighted

    @property
    def is_quiet(self) -> bool:
        """True when nothing happens but ambient behaviour."""
        return (
            not self.fires
            and not self.fast_fills
            and not self.windows
            and not self.drifts
            and self.haze is None
        )

    def plan(self) -> list[str]:
        """Human-readable description of what will happen, for the start-up log."""
        if self.is_quiet:
            return [f"scenario {self.name}: no events, ambient only"]
        lines: list[str] = []
        for fire in self.fires:
            lines.append(
                f"scenario {self.name}: at t={fire.t0:.0f}s a {fire.growth} fire starts in "
                f"building {fire.zone} ({fire.district}), nearest detector {fire.nearest_id} "
                f"({fire.distances_m[0][1]:.1f} m)"
            )
        for event in self.fast_fills:
            lines.append(
                f"scenario {self.name}: at t={event.t0:.0f}s {len(event.bin_ids)} bins start "
                f"filling fast: {', '.join(event.bin_ids)}"
            )
        for w in self.windows:
            lines.append(f"scenario {self.name}: at t={w.t0:.0f}s {w.note}")
        for episode in self.haze.episodes if self.haze is not None else ():
            lines.append(f"scenario {self.name}: at t={episode.t0:.0f}s {_describe_haze(episode)}")
            for rain in episode.rains:
                lines.append(f"scenario {self.name}: at t={rain.t:.0f}s {_describe_rain(rain)}")
        for d in self.drifts:
            lines.append(f"scenario {self.name}: at t={d.t0:.0f}s {_describe_drift(d)}")
        return lines

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
        for w in self.windows:
            events.append((w.t0, f"t={w.t0:.0f}s {w.note}"))
            if math.isfinite(w.t1):
                events.append((w.t1, f"t={w.t1:.0f}s ended: {w.note}"))
        rains: set[Rain] = set()
        for episode in self.haze.episodes if self.haze is not None else ():
            events.append((episode.t0, f"t={episode.t0:.0f}s {_describe_haze(episode)}"))
            # Each simulated morning until the rain (or the run's end), so the log shows
            # where the run is.
            rained = min((r.t for r in episode.rains), default=math.inf)
            if self.spec is not None and self.spec.run.until is not None:
                rained = min(rained, self.spec.run.until)
            first = math.ceil((episode.start_hour - HAZE_PEAK_HOUR) / 24.0)
            for day in range(first, first + MAX_LOGGED_DAYS):
                clock = (day * 24.0 + HAZE_PEAK_HOUR - episode.start_hour) * SECONDS_PER_HOUR
                at = episode.model_time(clock)
                if at >= rained:
                    break
                events.append(
                    (at, f"t={at:.0f}s haze clock: 07:00 WIB, day {day - first + 1} of the haze")
                )
            rains.update(episode.rains)
        for rain in sorted(rains, key=lambda r: r.t):
            events.append((rain.t, f"t={rain.t:.0f}s {_describe_rain(rain)}"))
        for d in self.drifts:
            events.append((d.t0, f"t={d.t0:.0f}s {_describe_drift(d)}"))
        return sorted(events, key=lambda e: e[0])


def _describe_haze(episode: HazeEpisode) -> str:
    clock = f", on a haze clock {episode.compression:g}x faster" if episode.compression != 1 else ""
    return (
        f"haze over {len(episode.districts)} districts ({', '.join(sorted(episode.districts))})"
        f"{clock}: from {_hhmm(episode.start_hour)} WIB it builds over "
        f"{episode.build_s / SECONDS_PER_HOUR:g} h, worst in the mornings, down to "
        f"{episode.peak_visibility_m:g} m of visibility"
    )


def _hhmm(hour: float) -> str:
    minutes = round(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _describe_rain(rain: Rain) -> str:
    where = ", ".join(sorted(rain.districts)) if rain.districts is not None else "everywhere"
    return f"rain ({where}) washes the haze out over {rain.over_s / 60:g} min of haze time"


def _describe_drift(drift: DriftEvent) -> str:
    names = ", ".join(drift.device_ids[:6]) + (
        f" (+{len(drift.device_ids) - 6})" if len(drift.device_ids) > 6 else ""
    )
    return f"dust drifts {names} up by {drift.rate_pct_m_per_day:g} %/m a day" + (
        f" ({drift.compression:g}x compressed)" if drift.compression != 1 else ""
    )


def _fire_in(
    building: Building,
    fleet: Fleet,
    t0: float,
    rng: random.Random,
    *,
    near: str | None = None,
    distance_m: float | None = None,
    growth: str = "medium",
) -> FireEvent:
    """Ignite a fire next to one detector of `building` (`near`, or a seeded pick)."""
    first = fleet.by_id[near or rng.choice(building.detector_ids)]
    radius = distance_m if distance_m is not None else rng.uniform(*FIRE_ORIGIN_RADIUS_M)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    origin = (first.x_m + radius * math.cos(angle), first.y_m + radius * math.sin(angle))
    distances = []
    for dev_id in building.detector_ids:
        device = fleet.by_id[dev_id]
        distances.append((dev_id, round(math.dist(origin, (device.x_m, device.y_m)), 2)))
    distances.sort(key=lambda item: item[1])
    return FireEvent(
        t0=t0,
        zone=building.zone,
        district=building.district,
        distances_m=tuple(distances),
        alpha_kw_s2=FIRE_GROWTH_KW_S2[growth],
        growth=growth,
    )


class ScenarioResolveError(ValueError):
    """A scenario names something the fleet does not have."""


def _select(
    sel: Selection,
    fleet: Fleet,
    rng: random.Random,
    kind: str | None,
    where: str,
    taken: set[str] | None = None,
) -> tuple[str, ...]:
    """Resolve an event's selection against the fleet (seeded when `count` picks a subset)."""
    if sel.devices:
        ids = []
        for name in sel.devices:
            dev_id = fleet.resolve(name)
            device = fleet.by_id.get(dev_id)
            if device is None:
                raise ScenarioResolveError(f"{where}: no device {name!r} in the fleet")
            if kind is not None and device.kind != kind:
                raise ScenarioResolveError(f"{where}: {dev_id} is a {device.kind}, not a {kind}")
            ids.append(dev_id)
        return tuple(ids)
    pool: list[SimDevice] = list(fleet.devices)
    if kind is not None:
        pool = [d for d in pool if d.kind == kind]
    if sel.district is not None:
        pool = [d for d in pool if d.district.lower() == sel.district.lower()]
    if sel.building is not None:
        zone = fleet.resolve(sel.building)
        pool = [d for d in pool if d.zone == zone]
    if taken:
        # Prefer devices no earlier event picked, so one event's effect does not mask another's.
        fresh = [d for d in pool if d.id not in taken]
        pool = fresh or pool
    if not pool:
        raise ScenarioResolveError(f"{where}: no {kind or 'device'} matches {sel.model_dump()}")
    if sel.count is not None and sel.count < len(pool):
        pool = rng.sample(pool, sel.count)
    return tuple(sorted(d.id for d in pool))


def _until(t0: float, for_s: float | None) -> float:
    return t0 + for_s if for_s is not None else math.inf


def _fmt_for(for_s: float | None) -> str:
    return f" for {for_s:.0f}s" if for_s is not None else ""


def resolve_scenario(spec: ScenarioSpec, fleet: Fleet, seed: int = 7) -> Scenario:
    """Turn a scenario file into concrete events on this fleet; deterministic for a seed."""
    rng = random.Random(f"sigap-scenario:{spec.name}:{seed}")
    fires: list[FireEvent] = []
    fast: list[FastFillEvent] = []
    windows: list[Window] = []
    labels: dict[str, tuple[str, ...]] = {}
    taken: set[str] = set()
    hazes: list[tuple[HazeSpec, tuple[str, ...]]] = []
    rains: list[Rain] = []
    drifts: list[DriftEvent] = []
    for number, event in enumerate(spec.event, start=1):
        where = f"scenario {spec.name}, event {number} ({event.do})"
        hit: tuple[str, ...]
        if isinstance(event, HazeSpec | RainSpec):
            # Weather picks no devices: it covers districts, whatever else the events pick.
            districts = _districts(event.districts, fleet, where)
            if isinstance(event, HazeSpec):
                hazes.append((event, districts))
            else:
                chosen = frozenset(districts) if event.districts else None
                rains.append(Rain(event.at, event.over, chosen))
            hit = _sensing(fleet, districts)
            if event.label is not None:
                labels[event.label] = hit
            continue
        if isinstance(event, DriftSpec):
            hit = _select(event, fleet, rng, "fire", where, taken)
            drifts.append(DriftEvent(event.at, hit, event.rate_pct_m_per_day, event.compression))
        elif isinstance(event, FireSpec):
            fire = _resolve_fire(event, fleet, rng, where, {f.zone for f in fires})
            fires.append(fire)
            hit = tuple(d for d, _ in fire.distances_m)
        elif isinstance(event, BinsFillSpec):
            hit = _select(event, fleet, rng, "bin", where, taken)
            fast.append(FastFillEvent(event.at, hit, event.reach_pct, event.rate_pct_s))
        elif isinstance(event, GatewayOfflineSpec):
            gateway = fleet.resolve(event.gateway)
            if gateway not in fleet.gateways:
                raise ScenarioResolveError(
                    f"{where}: no gateway {event.gateway!r} (the fleet has "
                    f"{', '.join(fleet.gateways) or 'none; set [fleet] gateways'})"
                )
            hit = tuple(d.id for d in fleet.devices if d.gateway_id == gateway)
            windows.append(
                Window(
                    event.at,
                    _until(event.at, event.for_),
                    hit,
                    "silent",
                    note=f"gateway {gateway} offline{_fmt_for(event.for_)}: "
                    f"{len(hit)} devices silent",
                )
            )
        else:
            kind: str | None = None
            if isinstance(event, BinFireSpec | KnockOverSpec):
                kind = "bin"
            elif isinstance(event, BatterySpec) and (event.to_pct is None) != (event.to_v is None):
                # A level in % drains bins, one in volts drains 9 V detectors.
                kind = "bin" if event.to_pct is not None else "fire"
            hit = _select(event, fleet, rng, kind, where, taken)
            windows.append(_window(event, hit))
        taken.update(hit)
        if event.label is not None:
            labels[event.label] = hit
    haze = _haze(spec, fleet, seed, hazes, rains, labels)
    expected: dict[str, set[str]] = {}
    rejections: dict[str, set[str]] = {}
    regional: dict[str, DistrictExpectation] = {}
    forbidden: dict[str, set[str]] = {}
    fleet_wide: list[ExpectSpec] = []
    for number, want in enumerate(spec.expect, start=1):
        if want.districts:
            where = f"scenario {spec.name}, expect {number}"
            for name in _expected_districts(want.districts, fleet, haze, where):
                before = regional.get(name, DistrictExpectation(frozenset()))
                regional[name] = DistrictExpectation(
                    before.alerts | frozenset(want.alerts),
                    want.category.value if want.category is not None else before.category,
                    want.cleared or before.cleared,
                )
            continue
        if want.label is None and not want.devices:
            fleet_wide.append(want)  # forbid only: resolved once every expectation is known
            continue
        ids = (
            labels[want.label]
            if want.label is not None
            else tuple(fleet.resolve(d) for d in want.devices)
        )
        for dev_id in ids:
            expected.setdefault(dev_id, set()).update(want.alerts)
            if want.rejected:
                rejections.setdefault(dev_id, set()).update(want.rejected)
            if want.forbid:
                forbidden.setdefault(dev_id, set()).update(want.forbid)
    for want in fleet_wide:
        for device in fleet.devices:
            if not expected.get(device.id):
                forbidden.setdefault(device.id, set()).update(want.forbid)
    return Scenario(
        spec.name,
        tuple(fires),
        tuple(fast),
        tuple(windows),
        labels,
        {k: frozenset(v) for k, v in expected.items() if v},
        {k: frozenset(v) for k, v in rejections.items()},
        spec,
        haze=haze,
        drifts=tuple(drifts),
        expected_districts=regional,
        forbidden={k: frozenset(v) for k, v in forbidden.items()},
    )


def _fleet_districts(fleet: Fleet) -> dict[str, str]:
    """The fleet's district names by their lower-case spelling."""
    return {d.district.lower(): d.district for d in fleet.devices if d.district}


def _districts(names: tuple[str, ...], fleet: Fleet, where: str) -> tuple[str, ...]:
    """Districts as the fleet spells them (every district of the fleet when none are named)."""
    known = _fleet_districts(fleet)
    if not names:
        return tuple(sorted(set(known.values())))
    out: list[str] = []
    for name in names:
        found = known.get(name.lower())
        if found is None:
            raise ScenarioResolveError(
                f"{where}: no district {name!r} in the fleet "
                f"(it has {', '.join(sorted(set(known.values()))) or 'none'})"
            )
        out.append(found)
    return tuple(sorted(set(out)))


def _sensing(fleet: Fleet, districts: tuple[str, ...]) -> tuple[str, ...]:
    """Devices that sense haze (fire detectors, air stations) in these districts."""
    chosen = set(districts)
    return tuple(d.id for d in fleet.devices if d.kind != "bin" and d.district in chosen)


def _expected_districts(
    names: tuple[str, ...], fleet: Fleet, haze: HazeField | None, where: str
) -> tuple[str, ...]:
    """Districts an expectation names; "*": every hazy district with something to sense it."""
    if "*" not in names:
        return _districts(names, fleet, where)
    if haze is None:
        raise ScenarioResolveError(f'{where}: districts = ["*"] needs a haze event')
    sensed = {d.district for d in fleet.devices if d.kind != "bin"}
    hazy = sorted(haze.districts & sensed)
    named = _districts(tuple(n for n in names if n != "*"), fleet, where) if len(names) > 1 else ()
    return tuple(sorted(set(hazy) | set(named)))


def _haze(
    spec: ScenarioSpec,
    fleet: Fleet,
    seed: int,
    hazes: list[tuple[HazeSpec, tuple[str, ...]]],
    rains: list[Rain],
    labels: dict[str, tuple[str, ...]],
) -> HazeField | None:
    """The scenario's haze episodes, and every detector's infiltration factor."""
    if not hazes:
        return None
    episodes: list[HazeEpisode] = []
    for number, (event, districts) in enumerate(hazes, start=1):
        if not districts:
            raise ScenarioResolveError(
                f"scenario {spec.name}: a haze over a fleet without districts"
            )
        episodes.append(
            make_episode(
                event.at,
                districts,
                f"{spec.name}:{seed}:{number}",
                compression=event.compression,
                start_hour=event.start_hour,
                build_s=event.build,
                peak_visibility_m=event.peak_visibility_m,
                afternoon=event.afternoon,
                weakest=event.weakest,
                shift_s=event.shift,
                variability=event.variability,
                rains=rains,
                label=event.label,
                until=spec.run.until,
            )
        )
    detectors = fleet.of_kind("fire")
    # A detector outside any zone is a building of its own.
    building_of = {d.id: d.zone or d.id for d in detectors}
    overrides: dict[str, float] = {}
    for name, factor in spec.fleet.infiltration.items():
        # A building (zone) of the fleet, or an event's label: the buildings it hit.
        key = fleet.resolve(name)
        if key in fleet.zones or building_of.get(key) == key:
            overrides[key] = factor
        elif name in labels:
            for dev_id in labels[name]:
                if dev_id in building_of:
                    overrides[building_of[dev_id]] = factor
        else:
            raise ScenarioResolveError(
                f"scenario {spec.name}: [fleet] infiltration names {name!r}, which is "
                "neither a building (zone) of the fleet nor an event's label"
            )
    factors = draw_infiltration(building_of.values(), seed, spec.fleet.leaky_share, overrides)
    return HazeField(episodes, {dev_id: factors[b] for dev_id, b in building_of.items()})


def _resolve_fire(
    event: FireSpec, fleet: Fleet, rng: random.Random, where: str, burning: set[str]
) -> FireEvent:
    if event.devices:
        dev_id = fleet.resolve(event.devices[0])
        device = fleet.by_id.get(dev_id)
        if device is None or device.kind != "fire" or device.zone is None:
            raise ScenarioResolveError(f"{where}: {dev_id!r} is not a fire detector in a building")
        building = fleet.zones[device.zone]
        return _fire_in(
            building,
            fleet,
            event.at,
            rng,
            near=dev_id,
            distance_m=event.distance_m,
            growth=event.growth,
        )
    assert event.building is not None  # the spec requires a building or a device
    if event.building == "auto":
        candidates = [b for b in fleet.buildings if b.zone not in burning]
        if event.district is not None:
            candidates = [b for b in candidates if b.district.lower() == event.district.lower()]
        # Prefer a building with 3+ detectors so a second detector can confirm the fire.
        roomy = [b for b in candidates if len(b.detector_ids) >= 3]
        if not candidates:
            raise ScenarioResolveError(f"{where}: the fleet has no building to set on fire")
        building = rng.choice(roomy or candidates)
    else:
        zone = fleet.resolve(event.building)
        if zone not in fleet.zones:
            raise ScenarioResolveError(f"{where}: no building {event.building!r} in the fleet")
        building = fleet.zones[zone]
    return _fire_in(
        building, fleet, event.at, rng, distance_m=event.distance_m, growth=event.growth
    )


def _window(
    event: BinFireSpec | KnockOverSpec | BatterySpec | SilentSpec | FaultSpec,
    hit: tuple[str, ...],
) -> Window:
    names = ", ".join(hit[:6]) + (f" (+{len(hit) - 6})" if len(hit) > 6 else "")
    if isinstance(event, BinFireSpec):
        return Window(
            event.at,
            math.inf,
            hit,
            "bin_fire",
            growth=event.growth,
            note=f"{event.growth} fire in bins {names}",
        )
    if isinstance(event, KnockOverSpec):
        return Window(
            event.at,
            _until(event.at, event.for_),
            hit,
            "knock_over",
            note=f"bins knocked over{_fmt_for(event.for_)}: {names}",
        )
    if isinstance(event, BatterySpec):
        level = " / ".join(
            x
            for x in (
                f"{event.to_pct:g} %" if event.to_pct is not None else "",
                f"{event.to_v:g} V" if event.to_v is not None else "",
            )
            if x
        )
        return Window(
            event.at,
            math.inf,
            hit,
            "battery",
            level_pct=event.to_pct,
            level_v=event.to_v,
            over_s=event.over,
            note=f"batteries drain to {level} over {event.over:.0f}s: {names}",
        )
    if isinstance(event, SilentSpec):
        return Window(
            event.at,
            _until(event.at, event.for_),
            hit,
            "silent",
            note=f"devices silent{_fmt_for(event.for_)}: {names}",
        )
    return Window(
        event.at,
        _until(event.at, event.for_),
        hit,
        event.fault,
        skew_s=event.skew_s,
        size=event.size,
        note=f"fault {event.fault}{_fmt_for(event.for_)}: {names}",
    )


def build_scenario(name: str | Path, fleet: Fleet, seed: int = 7) -> Scenario:
    """The named shipped scenario (or a scenario file) for this fleet; deterministic for a seed."""
    return resolve_scenario(load_scenario_spec(name), fleet, seed)


def scenario_with_fleet(
    name: str | Path, seed: int = 7, id_prefix: str = "sim"
) -> tuple[ScenarioSpec, Fleet, Scenario]:
    """A scenario file with the fleet its [fleet] table asks for, as `sigap simulate
    --scenario` builds them: for playing it offline (readings.iter_readings)."""
    spec = load_scenario_spec(name)
    fleet = generate_fleet(
        spec.fleet.devices,
        spec.fleet.fire_share,
        seed,
        id_prefix,
        spec.fleet.gateways,
        spec.fleet.air_stations,
    )
    return spec, fleet, resolve_scenario(spec, fleet, seed)
