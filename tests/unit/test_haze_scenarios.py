"""Issue #19's proof: the shipped scenarios haze-2015, haze-with-fire and dusty-detector, played
through the rule engine in model time (simulators.readings.iter_readings: the readings a
run publishes, without a broker or a clock), the haze timer every 60 s of event time as
`sigap up` runs it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from contract.ispu import category
from contract.readings import Q_INDEX
from ingest.batch import ReadingBatch
from rules.engine import RuleEngine
from rules.events import AlertEvent
from rules.params import KIND_DEFAULTS, DeviceSpec
from simulators.fleet import Fleet
from simulators.readings import iter_readings
from simulators.scenario import Scenario, scenario_with_fleet
from simulators.scenario_file import ScenarioSpec
from tests.unit.conftest import make_batch

EPOCH0 = 1_790_000_000.0  # model clock (s)
HAZE_CHECK_S = 60.0


def shipped(name: str, seed: int = 7) -> tuple[ScenarioSpec, Fleet, Scenario]:
    """A shipped scenario with its fleet, as `sigap simulate --scenario NAME` builds them."""
    return scenario_with_fleet(name, seed)


def until(spec: ScenarioSpec) -> float:
    """How long the scenario runs (s of event time); these scenarios all say."""
    assert spec.run.until is not None, spec.name
    return spec.run.until


def specs(fleet: Fleet) -> list[DeviceSpec]:
    """The rule engine's view of the simulated fleet, as the registry would give it."""
    return [
        DeviceSpec(
            i,
            d.id,
            d.kind,
            KIND_DEFAULTS[d.kind],
            d.zone,
            d.lat,
            d.lon,
            d.depth_mm,
            d.interval_s,
            d.district,
        )
        for i, d in enumerate(fleet.devices)
    ]


def play(
    fleet: Fleet, scenario: Scenario, until_s: float, every_s: float, check_s: float = HAZE_CHECK_S
) -> list[AlertEvent]:
    """Every alert event of the run: readings in batches per instant, the haze timer between."""
    devices = specs(fleet)
    index = {d.id: d.index for d in devices}
    engine = RuleEngine(devices)
    events: list[AlertEvent] = []
    next_check = check_s
    stream = iter_readings(fleet, scenario, 7, EPOCH0, until_s, every_s)
    for t, group in groupby(stream, key=lambda item: item[0]):
        while t >= next_check:
            events += engine.check_haze(int((EPOCH0 + next_check) * 1000))
            next_check += check_s
        rows = [(index[device.id], payload) for _, device, payload in group]
        now = int((EPOCH0 + t) * 1000)
        events += engine.evaluate(batch(rows, devices), now)
    return events


def batch(
    rows: Sequence[tuple[int, dict[str, Any]]], devices: Sequence[DeviceSpec]
) -> ReadingBatch:
    """A ReadingBatch of (device index, payload) rows (the payload's quantities)."""
    return make_batch(
        [(i, int(p["ts"]), {k: v for k, v in p.items() if k in Q_INDEX}) for i, p in rows],
        {d.index: d.kind for d in devices},
        [d.id for d in devices],
    )


def raised(events: Sequence[AlertEvent]) -> Iterator[AlertEvent]:
    """The raise and update events (what people are shown)."""
    return (e for e in events if e.action != "clear")


def test_haze_2015_raises_one_haze_alert_per_district_and_no_fire_alert() -> None:
    spec, fleet, scenario = shipped("haze-2015")
    events = play(fleet, scenario, until(spec), spec.run.interval_s)
    forbidden = [e for e in events if scenario.forbids(e.device_id, e.kind)]
    assert forbidden == [], forbidden[:3]
    assert not [e for e in events if e.category == "fire"]
    haze = [e for e in events if e.kind == "haze.regional"]
    for district, want in scenario.expected_districts.items():
        mine = [e for e in haze if e.device_id == f"haze:{district}"]
        assert [e.action.value for e in mine][:1] == ["raise"], (district, mine)
        worst = max(category(int(e.values["ispu"])).rank for e in raised(mine))
        assert want.category is None or category_id(worst) == want.category, (district, mine)
        assert not want.cleared or mine[-1].action == "clear", (district, mine[-1])
    assert {e.device_id for e in haze} == {f"haze:{d}" for d in scenario.expected_districts}


def category_id(rank: int) -> str:
    """The ISPU category id of a rank (0 baik .. 4 berbahaya)."""
    return ["baik", "sedang", "tidak_sehat", "sangat_tidak_sehat", "berbahaya"][rank]


def test_haze_with_fire_alarms_the_burning_building_no_later_than_in_clear_air() -> None:
    spec, fleet, scenario = shipped("haze-with-fire")
    (fire,) = scenario.fires
    burning = {d for d, _ in fire.distances_m}

    def first_fire(s: Scenario) -> int:
        events = play(fleet, s, until(spec), spec.run.interval_s)
        others = [e for e in events if e.category == "fire" and e.device_id not in burning]
        assert others == [], others[:3]
        alarms = [
            e.ts_ms
            for e in events
            if e.device_id in burning and e.kind in ("fire.alarm", "fire.confirmed")
        ]
        assert alarms, "the burning building raised no fire.alarm"
        return min(alarms)

    in_haze, in_clear_air = first_fire(scenario), first_fire(scenario.clear_air())
    assert in_haze - in_clear_air <= 30_000, (in_haze - in_clear_air) / 1000


def test_dusty_detector_is_a_maintenance_fault_never_a_fire() -> None:
    spec, fleet, scenario = shipped("dusty-detector")
    (drift,) = scenario.drifts
    (dusty,) = drift.device_ids
    every = spec.run.interval_s * spec.run.speed
    events = play(fleet, scenario, until(spec), every)
    assert not [e for e in events if e.category == "fire"]
    faults = [e for e in events if e.kind == "device.fault"]
    assert [(e.device_id, e.action.value) for e in faults] == [(dusty, "raise")]
    assert "maintenance" in faults[0].reason
