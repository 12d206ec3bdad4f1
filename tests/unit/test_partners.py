"""Confirmation partners from the map grid: the same detectors as comparing every pair."""

from __future__ import annotations

import math
import random

from bench.rules.reference import distance_m
from rules.engine import RuleEngine
from rules.params import DeviceSpec, RuleParams
from tests.unit.test_rules import T0, S, kinds_of, run


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


def test_partners_are_every_detector_in_the_zone_or_within_reach() -> None:
    rng = random.Random(7)
    specs = _fleet(rng)
    engine = RuleEngine(specs)
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
    assert compared > 2_000  # the fleet is dense enough for the test to mean something


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
