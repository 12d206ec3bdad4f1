"""Rule families over hand-made traces (docs/rules.md is the specification)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from contract.thresholds import RuleParams
from rules.engine import RuleEngine
from rules.events import AlertEvent
from rules.params import DeviceSpec
from tests.unit.conftest import make_batch

T0 = 1_790_000_000_000
S = 1000
MIN = 60 * S


def fleet(*specs: tuple[str, str] | tuple[str, str, Mapping[str, Any]]) -> list[DeviceSpec]:
    """Devices d0, d1, ... from (kind, zone[, attributes]) tuples."""
    out = []
    for i, spec in enumerate(specs):
        # Spread devices 1 km apart unless a test places them: only zones confirm.
        extra: dict[str, Any] = {"lat": -2.5 - i * 0.01, "lon": 112.95}
        if len(spec) > 2:
            extra |= spec[2]
        default = RuleParams(heat_fixed_c=60.0) if spec[0] == "bin" else RuleParams()
        params = extra.pop("params", default)
        out.append(DeviceSpec(i, f"d{i}", spec[0], params=params, zone=spec[1] or None, **extra))
    return out


def run(
    engine: RuleEngine,
    rows: Sequence[tuple[int, int, Mapping[str, float]]],
    kinds: dict[int, str] | None = None,
    one_by_one: bool = True,
) -> list[AlertEvent]:
    """Feed readings (one batch each, or all at once) with now = event time."""
    ids = engine.device_ids
    kinds = kinds or {i: ("bin" if engine.state.kind[i] == 2 else "fire") for i in range(len(ids))}
    if not one_by_one:
        return engine.evaluate(make_batch(rows, kinds, ids), max(r[1] for r in rows))
    events: list[AlertEvent] = []
    for row in rows:
        events += engine.evaluate(make_batch([row], kinds, ids), row[1])
    return events


def kinds_of(events: Sequence[AlertEvent]) -> list[tuple[str, str, str]]:
    return [(e.device_id, e.action.value, e.kind) for e in events]


# -- fire -------------------------------------------------------------------------------


def test_single_hot_reading_is_a_pre_alarm_verified_by_a_second() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    events = run(
        engine,
        [
            (0, T0, {"temp_c": 30}),
            (0, T0 + 10 * S, {"temp_c": 58}),
            (0, T0 + 20 * S, {"temp_c": 59}),
        ],
    )
    assert kinds_of(events) == [("d0", "raise", "fire.pre_alarm"), ("d0", "update", "fire.alarm")]
    assert events[0].reason.startswith("temp_c 58.0 >= 57")
    assert "verified" in events[1].reason and events[1].ts_ms == T0 + 20 * S
    assert events[1].severity == "critical"


def test_second_reading_after_the_verify_window_does_not_verify() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    events = run(
        engine,
        [
            (0, T0, {"temp_c": 58}),
            (0, T0 + 61 * S, {"temp_c": 58}),
            (0, T0 + 100 * S, {"temp_c": 58}),
        ],
    )
    # 61 s later restarts the wait; 39 s after that it verifies.
    assert kinds_of(events) == [("d0", "raise", "fire.pre_alarm"), ("d0", "update", "fire.alarm")]
    assert events[1].ts_ms == T0 + 100 * S


def test_heat_and_smoke_together_confirm_at_once() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    events = run(engine, [(0, T0, {"temp_c": 62, "smoke_obs_pct_m": 14})])
    assert kinds_of(events) == [("d0", "raise", "fire.confirmed")]
    assert "heat and smoke agree" in events[0].reason


def test_smoke_prealarm_then_alarm() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    events = run(
        engine,
        [
            (0, T0, {"smoke_obs_pct_m": 6}),
            (0, T0 + 10 * S, {"smoke_obs_pct_m": 11}),
            (0, T0 + 20 * S, {"smoke_obs_pct_m": 12}),
        ],
    )
    assert kinds_of(events) == [("d0", "raise", "fire.pre_alarm"), ("d0", "update", "fire.alarm")]
    assert "pre-alarm 2" in events[0].reason


def test_rate_of_rise_with_irregular_intervals() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    # 30 -> 36 C over 40 s: 9 C/min, below the fixed threshold; intervals of 7..23 s.
    rows = [
        (0, T0, {"temp_c": 30.0}),
        (0, T0 + 17 * S, {"temp_c": 32.0}),
        (0, T0 + 24 * S, {"temp_c": 33.5}),
        (0, T0 + 40 * S, {"temp_c": 36.0}),
        (0, T0 + 47 * S, {"temp_c": 38.0}),
    ]
    events = run(engine, rows)
    assert kinds_of(events)[0] == ("d0", "raise", "fire.pre_alarm")
    assert "rate of rise" in events[0].reason


def test_rate_of_rise_ignores_noise_between_close_readings() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    rng = random.Random(1)
    # 2 C peak to peak (ten times a thermistor's noise): 60 C/min between readings 2 s
    # apart, but under 8.3 C/min over the 20 s minimum span (2.8 C would be needed).
    rows = [(0, T0 + i * 2 * S, {"temp_c": 31 + rng.uniform(-1.0, 1.0)}) for i in range(600)]
    assert run(engine, rows) == []


def test_rate_of_rise_is_the_steepest_span_not_the_longest() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    # Flat for a minute, then 12 C/min from 60 s, reported every 10 s (NIST SDC39 D's
    # shape). Over the longest span in the window the rate is diluted by the flat part;
    # over the last 20 s it is the fire's.
    temps = [25.0] * 7 + [27.0, 29.0, 31.0]
    rows = [(0, T0 + i * 10 * S, {"temp_c": t}) for i, t in enumerate(temps)]
    events = run(engine, rows)
    assert kinds_of(events)[0] == ("d0", "raise", "fire.pre_alarm")
    assert "rate of rise 12" in events[0].reason
    assert events[0].ts_ms == T0 + 80 * S  # 4 C over 20 s; over 60 s only 4 C/min


def test_one_low_outlier_in_the_ring_fakes_no_rise() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    # Every reading 15 s apart goes into the ring, the single 4 C dip too (UL FSRI's
    # thermocouples do this in clean air). 17.3 C 30 s after a 12.9 C sample is 8.8 C/min
    # against it; against the warmer sample before it, 0.6 C/min.
    temps = [17.0, 17.0, 17.0, 12.9, 17.2, 17.3, 17.2, 17.1]
    rows = [(0, T0 + i * 15 * S, {"temp_c": t}) for i, t in enumerate(temps)]
    assert run(engine, rows) == []


def test_static_class_has_no_rate_of_rise() -> None:
    engine = RuleEngine(fleet(("fire", "", {"params": RuleParams().with_heat_class("BS")})))
    rows = [(0, T0 + i * 10 * S, {"temp_c": 30.0 + 3 * i}) for i in range(16)]  # 18 C/min
    events = run(engine, rows)
    assert events and "temp_c 69.0 >= 69" in events[0].reason  # the fixed B threshold


def test_tropical_days_never_alarm() -> None:
    # Sampit: 24..36 C daily cycle, humid, light haze; a week of readings every minute.
    engine = RuleEngine(fleet(*[("fire", "") for _ in range(5)]))
    rows = []
    for minute in range(7 * 24 * 60):
        temp = 30 + 6 * math.sin(2 * math.pi * (minute / 1440 - 0.375)) + 0.4 * math.sin(minute)
        rows.append(
            (
                minute % 5,
                T0 + minute * MIN,
                {"temp_c": round(temp, 2), "smoke_obs_pct_m": 0.4, "humidity_pct": 90},
            )
        )
    events = engine.evaluate(make_batch(rows, device_ids=engine.device_ids), T0)
    assert events == []


def test_fire_clears_after_the_hold_and_never_flaps() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    temps = [70, 75, 50, 56, 40, 40, 40, 40, 40, 40, 40, 40]  # 56 is in the hysteresis band
    rows = [(0, T0 + i * 10 * S, {"temp_c": t}) for i, t in enumerate(temps)]
    events = run(engine, rows)
    assert kinds_of(events) == [
        ("d0", "raise", "fire.pre_alarm"),
        ("d0", "update", "fire.alarm"),
        ("d0", "clear", "fire.alarm"),
    ]
    # Normal from the reading at 40 s; 60 s of normal readings clear it at 100 s.
    assert events[-1].ts_ms == T0 + 100 * S


def test_two_detectors_in_one_zone_confirm_and_share_partners() -> None:
    engine = RuleEngine(fleet(("fire", "hall"), ("fire", "hall"), ("fire", "other")))
    events = run(
        engine,
        [
            (0, T0, {"smoke_obs_pct_m": 12}),
            (2, T0 + 5 * S, {"temp_c": 90}),
            (1, T0 + 90 * S, {"temp_c": 60}),
        ],
    )
    assert kinds_of(events) == [
        ("d0", "raise", "fire.pre_alarm"),
        ("d2", "raise", "fire.pre_alarm"),
        ("d1", "raise", "fire.pre_alarm"),
        ("d1", "update", "fire.confirmed"),
        ("d0", "update", "fire.confirmed"),
    ]
    confirmed = {e.device_id: e for e in events if e.kind == "fire.confirmed"}
    assert confirmed["d0"].partners == ("d1",) and confirmed["d1"].partners == ("d0",)
    assert confirmed["d0"].zone == "hall" and confirmed["d0"].ts_ms == T0 + 90 * S


def test_detectors_close_together_confirm_without_a_zone() -> None:
    near = {"lat": -2.5400, "lon": 112.9500}
    close = {"lat": -2.5405, "lon": 112.9503}  # ~65 m away
    far = {"lat": -2.5500, "lon": 112.9500}  # ~1.1 km away
    engine = RuleEngine(fleet(("fire", "", near), ("fire", "", close), ("fire", "", far)))
    events = run(
        engine,
        [(2, T0, {"temp_c": 80}), (0, T0 + S, {"temp_c": 80}), (1, T0 + 2 * S, {"temp_c": 80})],
    )
    confirmed = sorted(e.device_id for e in events if e.kind == "fire.confirmed")
    assert confirmed == ["d0", "d1"]


def test_duplicates_and_late_readings() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    hot = (0, T0, {"temp_c": 80.0})
    assert len(engine.evaluate(make_batch([hot, hot, hot], device_ids=["d0"]), T0)) == 1
    assert engine.duplicate_readings == 2
    # The same reading redelivered later is late, not a second alarm-level reading.
    assert engine.evaluate(make_batch([hot], device_ids=["d0"]), T0 + S) == []
    assert engine.late_readings == 1


# -- bins -------------------------------------------------------------------------------


def test_bin_nearly_full_then_full_then_emptied() -> None:
    engine = RuleEngine(fleet(("bin", "", {"depth_mm": 1000.0})))
    fills = [50, 76, 77, 91, 92, 85, 85, 20, 18]
    events = run(engine, [(0, T0 + i * MIN, {"fill_pct": f}) for i, f in enumerate(fills)])
    assert kinds_of(events) == [
        ("d0", "raise", "bin.nearly_full"),
        ("d0", "update", "bin.full"),
        ("d0", "clear", "bin.full"),
    ]
    assert [e.ts_ms for e in events] == [T0 + 2 * MIN, T0 + 4 * MIN, T0 + 8 * MIN]
    assert events[1].reason.startswith("fill_pct 92.0 >= 90")


def test_noisy_ultrasonic_readings_do_not_flap() -> None:
    engine = RuleEngine(fleet(("bin", "", {"depth_mm": 1000.0})))
    rng = random.Random(3)
    fills = [95 + rng.uniform(-3, 3) for _ in range(200)]
    for i in range(10, 200, 17):
        fills[i] = 0.0  # a lost echo reads as an empty bin, once
    for i in range(5, 200, 23):
        fills[i] = 100.0
    events = run(engine, [(0, T0 + i * MIN, {"fill_pct": f}) for i, f in enumerate(fills)])
    assert kinds_of(events) == [("d0", "raise", "bin.full")]


def test_full_bin_below_hysteresis_goes_back_to_nearly_full() -> None:
    engine = RuleEngine(fleet(("bin", "")))
    fills = [95, 95, 78, 78, 85, 85]  # compacted, then filling again
    events = run(engine, [(0, T0 + i * MIN, {"fill_pct": f}) for i, f in enumerate(fills)])
    assert kinds_of(events) == [("d0", "raise", "bin.full"), ("d0", "update", "bin.nearly_full")]


def test_fill_rate_and_time_to_full_survive_noise_and_emptying() -> None:
    engine = RuleEngine(fleet(("bin", "")))
    rng = random.Random(5)
    rows, fill = [], 10.0
    for i in range(24 * 6):  # every 10 minutes for a day: 3 %/h, emptied at 80 %
        fill += 0.5
        if fill >= 80:
            fill = 5.0
        rows.append((0, T0 + i * 10 * MIN, {"fill_pct": fill + rng.uniform(-2, 2)}))
    run(engine, rows)
    status = engine.bin_status(0)
    assert status is not None and status.rate_pct_per_h is not None
    assert 2.5 <= status.rate_pct_per_h <= 3.5, status
    assert status.hours_to_full is not None
    assert abs(status.hours_to_full - (90 - status.fill_pct) / status.rate_pct_per_h) < 1e-6


def test_bin_fire_and_tilt() -> None:
    engine = RuleEngine(fleet(("bin", "")))
    rows = [
        (0, T0, {"temp_c": 35, "tilt_deg": 3}),
        (0, T0 + MIN, {"temp_c": 64, "tilt_deg": 80}),
        (0, T0 + 2 * MIN, {"temp_c": 30, "tilt_deg": 40}),
        (0, T0 + 3 * MIN, {"temp_c": 30, "tilt_deg": 5}),
    ]
    events = run(engine, rows)
    assert kinds_of(events) == [
        ("d0", "raise", "bin.fire"),
        ("d0", "raise", "bin.tilted"),
        ("d0", "clear", "bin.fire"),
        ("d0", "clear", "bin.tilted"),
    ]
    assert events[0].category == "fire" and events[0].severity == "critical"


# -- health -----------------------------------------------------------------------------


def test_battery_low_with_hysteresis() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    volts = [3.6, 3.25, 3.35, 3.45, 3.6]
    events = run(engine, [(0, T0 + i * MIN, {"battery_v": v}) for i, v in enumerate(volts)])
    assert kinds_of(events) == [
        ("d0", "raise", "device.battery_low"),
        ("d0", "clear", "device.battery_low"),
    ]
    assert events[1].ts_ms == T0 + 4 * MIN
    # An alert shows the quantities it names, as far as the reading carried them.
    assert [e.values for e in events] == [{"battery_v": 3.25}, {"battery_v": 3.6}]


def test_alerts_show_the_values_each_reading_carried() -> None:
    engine = RuleEngine(fleet(("bin", "", {"depth_mm": 1000.0}), ("bin", "")))
    rows = [
        (0, T0, {"fill_pct": 95.0, "distance_mm": 50.0}),
        (1, T0, {"fill_pct": 96.0}),
        (0, T0 + MIN, {"fill_pct": 95.0, "distance_mm": 50.0}),
        (1, T0 + MIN, {"fill_pct": 96.0, "temp_c": 30.0}),
    ]
    events = run(engine, rows, one_by_one=False)
    assert kinds_of(events) == [("d0", "raise", "bin.full"), ("d1", "raise", "bin.full")]
    assert [e.values for e in events] == [
        {"fill_pct": 95.0, "distance_mm": 50.0},
        {"fill_pct": 96.0},  # no distance: none shown, and temp_c is not what the alert is about
    ]


def test_offline_after_missed_intervals_cleared_by_next_reading() -> None:
    engine = RuleEngine(fleet(("fire", "", {"reporting_interval_s": 10.0}), ("bin", "")))
    engine.evaluate(make_batch([(0, T0, {"temp_c": 30})], device_ids=engine.device_ids), T0)
    assert engine.check_offline(T0 + 30 * S) == []  # exactly 3 intervals: not yet
    (offline,) = engine.check_offline(T0 + 31 * S)
    assert (offline.device_id, offline.kind, offline.severity) == ("d0", "device.offline", "major")
    assert engine.check_offline(T0 + 60 * S) == []  # raised once
    events = engine.evaluate(
        make_batch([(0, T0 + 61 * S, {"temp_c": 30})], device_ids=engine.device_ids), T0 + 61 * S
    )
    assert kinds_of(events) == [("d0", "clear", "device.offline")]


def test_fault_for_impossible_and_stuck_values() -> None:
    engine = RuleEngine(fleet(("bin", "", {"depth_mm": 1000.0}), ("fire", "")))
    events = run(
        engine,
        [
            (0, T0, {"distance_mm": 1500.0}),
            (0, T0 + MIN, {"distance_mm": 400}),
            (0, T0 + 2 * MIN, {"distance_mm": 410}),
            (0, T0 + 3 * MIN, {"distance_mm": 420}),
        ],
    )
    assert kinds_of(events) == [("d0", "raise", "device.fault"), ("d0", "clear", "device.fault")]
    assert "beyond the bin's depth" in events[0].reason
    stuck = [(1, T0 + i * 20 * MIN, {"temp_c": 29.5}) for i in range(25)]  # 8 h, same value
    events = run(engine, stuck)
    assert kinds_of(events) == [("d1", "raise", "device.fault")]
    assert "stuck at 29.5" in events[0].reason


# -- engine ------------------------------------------------------------------------------


def test_one_batch_or_many_give_the_same_events() -> None:
    engine_a = RuleEngine(fleet(("fire", "z"), ("fire", "z"), ("bin", "")))
    engine_b = RuleEngine(fleet(("fire", "z"), ("fire", "z"), ("bin", "")))
    rows = []
    for i in range(40):
        rows.append((0, T0 + i * 10 * S, {"temp_c": 30 + i * 2.0}))
        rows.append((1, T0 + i * 10 * S + 3, {"smoke_obs_pct_m": 0.3 * i}))
        rows.append((2, T0 + i * 10 * S + 7, {"fill_pct": 2.5 * i, "temp_c": 30 + i}))
    many = run(engine_a, rows)
    once = run(engine_b, rows, one_by_one=False)
    assert sorted(e.key() for e in many) == sorted(e.key() for e in once)
    assert {e.kind for e in many} >= {"fire.confirmed", "bin.full", "bin.fire"}


def test_state_grows_with_the_fleet_and_stays_small() -> None:
    engine = RuleEngine(fleet(("fire", "")), capacity=4)
    engine.upsert_device(DeviceSpec(5000, "far", "fire"))
    events = engine.evaluate(
        make_batch(
            [(5000, T0, {"temp_c": 99, "smoke_obs_pct_m": 30})], device_ids=engine.device_ids
        ),
        T0,
    )
    assert [e.device_id for e in events] == ["far"]
    assert engine.state.capacity >= 5001
    assert engine.state.bytes_per_device() <= 256


def test_seeded_state_after_restart_raises_nothing_new() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    engine.seed("fire", 0, "fire.alarm")
    events = run(engine, [(0, T0, {"temp_c": 90}), (0, T0 + 10 * S, {"temp_c": 90})])
    assert events == []
    assert engine.check_offline(T0 + 10 * S) == []


def test_reorder_window_holds_and_releases() -> None:
    engine = RuleEngine(fleet(("fire", "")), reorder_window_ms=5 * S)
    batch = make_batch(
        [(0, T0 + 2 * S, {"temp_c": 80}), (0, T0, {"temp_c": 80})], device_ids=engine.device_ids
    )
    assert engine.evaluate(batch, T0 + 2 * S) == []  # held: neither is 5 s old yet
    events = engine.release(T0 + 7 * S)
    assert kinds_of(events) == [("d0", "raise", "fire.pre_alarm"), ("d0", "update", "fire.alarm")]
    assert [e.ts_ms for e in events] == [T0, T0 + 2 * S]


def test_a_changed_profile_applies_to_that_device_only() -> None:
    """Rounds skip scanning profiles when each kind has one; re-registering a device with
    its own thresholds (and back) must end that shortcut and then restore it."""
    specs = fleet(("fire", ""), ("fire", ""), ("bin", ""), ("bin", ""))
    warm = {"temp_c": 58.0}  # over the default 57 C, under a class B detector's 69 C
    full = {"fill_pct": 80.0}  # nearly full by default (75 %), not for an 85 % bin

    def both(engine: RuleEngine, t: int) -> list[tuple[str, str, str]]:
        rows = [(0, t, warm), (1, t, warm), (2, t, full), (3, t, full)]
        rows += [(2, t + S, full), (3, t + S, full)]  # a fill change needs two readings
        return kinds_of(run(engine, rows, one_by_one=False))

    pre, nearly = "fire.pre_alarm", "bin.nearly_full"
    engine = RuleEngine(specs)
    engine.upsert_device(DeviceSpec(1, "d1", "fire", params=RuleParams(heat_fixed_c=69.0)))
    assert both(engine, T0) == [
        ("d0", "raise", pre),
        ("d2", "raise", nearly),
        ("d3", "raise", nearly),
    ]
    engine.upsert_device(specs[1])  # one profile per kind again: d1 alarms at 58 C
    assert kinds_of(run(engine, [(1, T0 + MIN, warm)])) == [("d1", "raise", pre)]
    assert engine._sides(np.array([1, 2], np.uint8), 1) is not None  # the shortcut is back

    engine = RuleEngine(specs)
    roomy = RuleParams(heat_fixed_c=60.0, bin_nearly_full_pct=85.0)
    engine.upsert_device(DeviceSpec(3, "d3", "bin", params=roomy, depth_mm=1000))
    assert both(engine, T0) == [("d0", "raise", pre), ("d1", "raise", pre), ("d2", "raise", nearly)]


def test_a_negative_clear_margin_clears_a_battery_still_under_the_threshold() -> None:
    """A clear margin below zero clears at a level the raise threshold still calls low."""
    lenient = RuleParams(battery_clear_pct_margin=-5.0)
    engine = RuleEngine([DeviceSpec(0, "d0", "fire", params=lenient)])
    rows = [(0, T0, {"battery_pct": 5.0}), (0, T0 + MIN, {"battery_pct": 12.0})]
    assert kinds_of(run(engine, rows)) == [
        ("d0", "raise", "device.battery_low"),
        ("d0", "clear", "device.battery_low"),
    ]


def test_a_reading_of_a_device_never_registered_names_it_from_the_batch() -> None:
    engine = RuleEngine(fleet(("fire", "")))
    ids = ["d0", "", "", "stray"]
    batch = make_batch([(0, T0, {"smoke_obs_pct_m": 20}), (3, T0, {"battery_pct": 5})], None, ids)
    events = engine.evaluate(batch, T0)
    assert ("stray", "raise", "device.battery_low") in kinds_of(events)
    engine.upsert_device(DeviceSpec(3, "stray", "fire"))  # registered after all
    assert engine._sides(np.array([1], np.uint8), 1) is not None


def test_faint_smoke_with_carbon_monoxide_is_a_pre_alarm() -> None:
    engine = RuleEngine(fleet(("fire", ""), ("fire", ""), ("fire", "")))
    rows = [
        (0, T0, {"smoke_obs_pct_m": 0.8, "co_ppm": 60.0}),  # faint smoke and CO: a fire
        (1, T0, {"smoke_obs_pct_m": 0.8, "co_ppm": 40.0}),  # haze brings tens of ppm
        (2, T0, {"smoke_obs_pct_m": 0.1, "co_ppm": 200.0}),  # CO alone: a CO alarm's job
    ]
    events = run(engine, rows)
    assert kinds_of(events) == [("d0", "raise", "fire.pre_alarm")]
    assert "with co_ppm 60 (>= 50)" in events[0].reason


# -- faults the sensor reports (device profiles' status strings, issue #20) ----------------


def _reports(
    engine: RuleEngine, ts: int, quantities: Mapping[str, float], fault: str | None
) -> list[tuple[str, str, str]]:
    batch = make_batch([(0, ts, quantities)], {0: "bin"}, engine.device_ids)
    if fault is not None:
        batch = dataclasses.replace(batch, faults={0: fault})
    return kinds_of(engine.evaluate(batch, ts))


@pytest.mark.parametrize("reorder_ms", [0, 5_000])
def test_a_fault_the_sensor_reports_is_raised_and_cleared_by_the_next_reading(
    reorder_ms: int,
) -> None:
    engine = RuleEngine(fleet(("bin", "")), reorder_window_ms=reorder_ms)
    raised = _reports(engine, T0, {"rssi_dbm": -97}, "distance: No Sensor")
    assert raised == [("d0", "raise", "device.fault")]
    # The sensor says it again (each uplink does): no second alert; battery alone is not a
    # measurement, so it clears nothing.
    assert _reports(engine, T0 + 60 * S, {"battery_v": 3.4}, "distance: No Sensor") == []
    assert _reports(engine, T0 + 120 * S, {"battery_v": 3.4}, None) == []
    # The first distance after it: cleared at once (not after fault_clear_readings).
    events = []
    for k in range(3):
        ts = T0 + (180 + 60 * k) * S
        batch = make_batch([(0, ts, {"distance_mm": 800.0})], {0: "bin"}, engine.device_ids)
        events += engine.evaluate(batch, ts) + engine.release(ts + reorder_ms)
    assert kinds_of(events) == [("d0", "clear", "device.fault")]
    assert events[0].reason == "the sensor reports readings again"


def test_a_reported_fault_s_reason_is_the_sensor_s_text_and_its_own_reading_does_not_clear() -> (
    None
):
    engine = RuleEngine(fleet(("bin", "")))
    batch = dataclasses.replace(
        make_batch([(0, T0, {"distance_mm": 15.0})], {0: "bin"}, engine.device_ids),
        faults={0: "position: unknown"},
    )
    events = engine.evaluate(batch, T0)
    assert [(e.kind, e.reason) for e in events] == [
        ("device.fault", "the sensor reports position: unknown")
    ]
