"""Confirmation partners from the grid: the same detectors as comparing every pair."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from bench.rules.reference import ReferenceEngine, distance_m
from contract.thresholds import RuleParams
from rules import partners
from rules.engine import RuleEngine
from rules.params import DeviceSpec
from tests.unit.conftest import make_batch
from tests.unit.test_rules import T0, S, kinds_of, run

Key = tuple[str, str, int, frozenset[str], str | None]


def _fleet(rng: random.Random) -> list[DeviceSpec]:
    """Detectors in tight clusters (many pairs near the reach) in awkward places, a few bins
    among them, detectors with no place, and three confirmation distances."""
    places = [(-2.54, 112.95), (0.0, 179.9996), (0.0, -179.9996), (89.9993, 10.0), (-75.0, -60.0)]
    reaches = [RuleParams(confirm_distance_m=m) for m in (50.0, 100.0, 300.0)]
    specs = []
    for i in range(600):
        lat, lon = places[i % len(places)]
        # Up to ~400 m apart: at the pole and the antimeridian longitude wraps.
        lat = max(-90.0, min(90.0, lat + rng.uniform(-0.003, 0.003)))
        lon = (lon + rng.uniform(-0.002, 0.002) + 180.0) % 360.0 - 180.0
        if i % 37 == 0:
            lat = lon = math.nan
        kind = "bin" if i % 11 == 0 else "fire"
        zone = f"z{i % 23}" if i % 3 == 0 else None
        specs.append(
            DeviceSpec(i, f"d{i}", kind, params=rng.choice(reaches), zone=zone, lat=lat, lon=lon)
        )
    return specs


def _check(engine: RuleEngine, specs: list[DeviceSpec]) -> int:
    """Every detector's partners against comparing every pair; how many pairs matched."""
    compared = 0
    for d in specs:
        if d.kind != "fire":
            continue
        expected = {
            e.index
            for e in specs
            if e.kind == "fire"
            and e.index != d.index
            and (
                (d.zone is not None and d.zone == e.zone)
                or distance_m(d.lat, d.lon, e.lat, e.lon) <= d.params.confirm_distance_m
            )
        }
        assert engine._partners.of(d.index) == expected, d
        compared += len(expected)
    return compared


def test_partners_are_every_detector_in_the_zone_or_within_reach() -> None:
    specs = _fleet(random.Random(7))
    engine = RuleEngine(specs)
    assert _check(engine, specs) > 2_000  # dense enough for the test to mean something


def test_partners_follow_registrations_and_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few changes are looked at one by one; many, or a longer reach, rebuild the index."""
    rng = random.Random(8)
    specs = _fleet(rng)
    engine = RuleEngine(specs)
    engine.check_offline(T0)  # builds the index

    def change(count: int, params: RuleParams | None = None) -> None:
        for i in rng.sample(range(len(specs) + 20), count):
            if i >= len(specs):  # registered after the build
                specs.append(
                    DeviceSpec(len(specs), f"d{len(specs)}", "fire", lat=-2.54, lon=112.95)
                )
                i = len(specs) - 1
            other = rng.choice(specs)  # take another device's place, zone or kind
            new = replace(specs[i], lat=other.lat, lon=other.lon, zone=other.zone, kind=other.kind)
            specs[i] = new if params is None else replace(new, params=params)
            engine.upsert_device(specs[i])

    change(40)
    assert engine._partners._built and len(engine._partners._moved) == 40
    _check(engine, specs)
    change(20, params=RuleParams(confirm_distance_m=500.0))  # a longer reach: rebuilt
    assert engine._partners._reach == 500.0 and len(engine._partners._moved) == 19
    _check(engine, specs)
    monkeypatch.setattr(partners, "_MOVED", 50)
    change(60)  # more than the overlay takes: rebuilt on the way
    assert len(engine._partners._moved) < 50
    _check(engine, specs)


def test_moving_a_detector_changes_its_partners() -> None:
    far = [
        DeviceSpec(0, "d0", "fire", lat=-2.54, lon=112.95),
        DeviceSpec(1, "d1", "fire", lat=-2.55, lon=112.95),  # 1.1 km away
    ]
    engine = RuleEngine(far)
    hot = {"temp_c": 70.0}
    events = run(engine, [(0, T0, hot), (1, T0 + 5 * S, hot)])
    assert kinds_of(events) == [
        ("d0", "raise", "fire.pre_alarm"),
        ("d1", "raise", "fire.pre_alarm"),
    ]
    # Moved next to d0 (about 55 m): the next alarm readings confirm the fire.
    engine.upsert_device(DeviceSpec(1, "d1", "fire", lat=-2.5405, lon=112.95))
    events = run(engine, [(0, T0 + 10 * S, hot), (1, T0 + 12 * S, hot)])
    assert ("d1", "update", "fire.confirmed") in kinds_of(events)
    assert ("d0", "update", "fire.confirmed") in kinds_of(events)


def test_a_haze_over_a_district_gives_the_oracles_events() -> None:
    """Many detectors alarming at once (smoke haze from peat fires): every alarm row has
    many possible partners, and the engine must still agree with the reference."""
    rng = random.Random(11)
    specs = [
        DeviceSpec(
            i,
            f"d{i}",
            "fire",
            zone=f"z{i // 4}" if i % 5 else None,
            lat=-2.54 + rng.uniform(0, 0.003),  # ~330 m square: many within 100 m
            lon=112.95 + rng.uniform(0, 0.003),
        )
        for i in range(150)
    ]
    ids = [s.id for s in specs]
    kinds = dict.fromkeys(range(len(specs)), "fire")
    engines: list[RuleEngine | ReferenceEngine] = [RuleEngine(specs), ReferenceEngine(specs)]
    seen: list[list[tuple[tuple[str, str, str, str, int], frozenset[str]]]] = [[], []]
    for step in range(12):  # every 20 s: second alarms verify (level 2) before partners join
        rows = []
        for s in rng.sample(specs, 40):
            smoke = rng.choice([2.0, 6.0, 11.0, 14.0])  # normal, pre-alarm, alarm
            rows.append(
                (s.index, T0 + step * 20 * S + rng.randrange(20 * S), {"smoke_obs_pct_m": smoke})
            )
        for which, engine in enumerate(engines):
            events = engine.evaluate(make_batch(rows, kinds, ids), T0 + (step + 1) * 20 * S)
            seen[which] += sorted((e.key(), frozenset(e.partners)) for e in events)
    assert seen[0] == seen[1]
    confirmed = [key for key, _ in seen[0] if key[3] == "fire.confirmed"]
    assert len(confirmed) > 50


def test_two_verified_alarms_confirm_each_other() -> None:
    """Both detectors already at fire.alarm (level 2): a partner's alarm still confirms."""
    specs = [DeviceSpec(i, f"d{i}", "fire", zone="z", lat=-2.54, lon=112.95) for i in range(2)]
    hot = {"smoke_obs_pct_m": 12.0}
    rows = [(0, T0, hot), (0, T0 + 10 * S, hot), (1, T0 + 200 * S, hot), (1, T0 + 210 * S, hot)]
    rows.append((0, T0 + 215 * S, hot))
    events = run(RuleEngine(specs), rows)
    assert kinds_of(events) == [
        ("d0", "raise", "fire.pre_alarm"),
        ("d0", "update", "fire.alarm"),
        ("d1", "raise", "fire.pre_alarm"),
        ("d1", "update", "fire.alarm"),
        ("d0", "update", "fire.confirmed"),
        ("d1", "update", "fire.confirmed"),
    ]


def _both(specs: list[DeviceSpec], rows: list[tuple[int, int, dict[str, float]]]) -> list[Key]:
    """Each row in its own batch through both engines: the production engine's keys (with
    partners and zone), after checking that the reference gives the same."""
    ids = [s.id for s in specs]
    kinds = {s.index: s.kind for s in specs}
    seen: list[list[Key]] = []
    for engine in (RuleEngine(specs), ReferenceEngine(specs)):
        out: list[Key] = []
        for row in rows:
            events = engine.evaluate(make_batch([row], kinds, ids), row[1])
            out += sorted(
                (e.device_id, e.kind, e.ts_ms, frozenset(e.partners), e.zone) for e in events
            )
        seen.append(out)
    assert seen[0] == seen[1]
    return seen[0]


SMOKE = {"smoke_obs_pct_m": 12.0}


def test_a_reach_of_zero_still_pairs_detectors_at_one_place() -> None:
    here = RuleParams(confirm_distance_m=0.0)
    specs = [DeviceSpec(i, f"d{i}", "fire", params=here, lat=-2.54, lon=112.95) for i in range(2)]
    keys = _both(specs, [(0, T0, SMOKE), (1, T0 + S, SMOKE)])
    assert [k[:2] for k in keys if k[1] == "fire.confirmed"] == [
        ("d0", "fire.confirmed"),
        ("d1", "fire.confirmed"),
    ]


def test_a_nan_reach_confirms_by_zone_only_and_leaves_the_others_alone() -> None:
    # The rules file rejects NaN (test_rule_params); a DeviceSpec built in code may carry it.
    nan = replace(RuleParams(), confirm_distance_m=math.nan)
    specs = [
        DeviceSpec(0, "d0", "fire", lat=-2.54, lon=112.95),
        DeviceSpec(1, "d1", "fire", lat=-2.5404, lon=112.95),  # ~45 m from d0
        DeviceSpec(2, "d2", "fire", params=nan, lat=-2.54, lon=112.96),
    ]
    keys = _both(specs, [(0, T0, SMOKE), (1, T0 + S, SMOKE), (2, T0 + 2 * S, SMOKE)])
    assert {k[0] for k in keys if k[1] == "fire.confirmed"} == {"d0", "d1"}


def test_a_detector_back_at_pre_alarm_is_a_partner_again() -> None:
    """Cleared, then at level 1 again by pre-alarm smoke only: its alarm a few seconds
    before still counts for confirmation (docs/rules.md)."""
    quick = RuleParams(fire_clear_hold_s=0.0)
    specs = [DeviceSpec(i, f"d{i}", "fire", params=quick, zone="z") for i in range(2)]
    rows = [
        (1, T0, {"smoke_obs_pct_m": 10.0}),  # d1 pre-alarm (unverified alarm), last alarm T0
        (1, T0 + 10 * S, {"smoke_obs_pct_m": 0.0}),  # back to normal: cleared
        (1, T0 + 20 * S, {"smoke_obs_pct_m": 7.0}),  # pre-alarm smoke: level 1 again
        (0, T0 + 30 * S, {"smoke_obs_pct_m": 10.0}),  # d0 alarms: d1 is its partner
    ]
    confirmed = [k[:3] for k in _both(specs, rows) if k[1] == "fire.confirmed"]
    assert confirmed == [
        ("d0", "fire.confirmed", T0 + 30 * S),
        ("d1", "fire.confirmed", T0 + 30 * S),
    ]


def test_a_confirmed_fire_names_a_zone_only_when_the_whole_group_is_in_it() -> None:
    specs = [
        DeviceSpec(0, "d0", "fire", zone="z", lat=-2.54, lon=112.95),
        DeviceSpec(1, "d1", "fire", zone="z", lat=-2.55, lon=112.95),  # 1.1 km: by zone
        DeviceSpec(2, "d2", "fire", lat=-2.5404, lon=112.95),  # ~45 m from d0, no zone
        DeviceSpec(3, "d3", "fire", zone="y", lat=-2.60, lon=112.95),
        DeviceSpec(4, "d4", "fire", zone="y", lat=-2.61, lon=112.95),
    ]
    rows = [(1, T0, SMOKE), (2, T0 + S, SMOKE), (0, T0 + 2 * S, SMOKE)]
    rows += [(3, T0 + 3 * S, SMOKE), (4, T0 + 4 * S, SMOKE)]
    confirmed = {k[0]: k[4] for k in _both(specs, rows) if k[1] == "fire.confirmed"}
    assert confirmed == {"d0": None, "d1": None, "d2": None, "d3": "y", "d4": "y"}


def test_an_empty_zone_is_no_zone() -> None:
    """Detectors 1 km apart, registered with an empty zone: nothing to confirm each other."""
    specs = [DeviceSpec(i, f"d{i}", "fire", zone="", lat=-2.54 - i * 0.01) for i in range(2)]
    keys = _both(specs, [(0, T0, SMOKE), (1, T0 + S, SMOKE)])
    assert [k[1] for k in keys] == ["fire.pre_alarm", "fire.pre_alarm"]
