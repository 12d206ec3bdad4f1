"""Rule engine: fire and bin rules over hand-made traces, and the alert guarantees."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine import RuleEngine, RuleParams
from rules.events import Action, AlertEvent
from rules.fire import FireParams
from tests.unit.conftest import make_batch

T0 = 1_790_000_000_000
MIN = 60_000


def summary(events: list[AlertEvent]) -> list[tuple[str, str, str, int]]:
    return [(e.device_id, e.kind, e.action.value, e.ts_ms) for e in events]


def test_heat_raises_once_and_clears_with_hysteresis() -> None:
    engine = RuleEngine()
    temps = [30, 45, 58, 70, 56, 54, 51, 40]
    events = engine.evaluate(
        make_batch([(0, T0 + i * MIN, {"temp_c": t}) for i, t in enumerate(temps)])
    )
    # 56 and 54 are below 57 but within the 5 C clearing margin: still burning.
    assert summary(events) == [
        ("dev-0", "fire.alarm", "raise", T0 + 2 * MIN),
        ("dev-0", "fire.alarm", "clear", T0 + 6 * MIN),
    ]
    assert events[0].reason == "temp_c 58 >= 57"
    assert events[0].severity == "critical"


def test_smoke_alone_raises() -> None:
    events = RuleEngine().evaluate(make_batch([(0, T0, {"temp_c": 33, "smoke_obs_pct_m": 12.5})]))
    assert [e.reason for e in events] == ["smoke_obs_pct_m 12.5 >= 10"]
    assert events[0].values == {"temp_c": 33.0, "smoke_obs_pct_m": 12.5}


def test_reading_without_fire_quantities_keeps_the_alarm() -> None:
    engine = RuleEngine()
    engine.evaluate(make_batch([(0, T0, {"temp_c": 90})]))
    assert engine.evaluate(make_batch([(0, T0 + MIN, {"battery_v": 3.1})])) == []


def test_tropical_days_never_alarm() -> None:
    # Sampit: 24..36 C daily, humid, light haze; a week of readings every minute.
    rows = []
    for minute in range(7 * 24 * 60):
        temp = 30 + 6 * math.sin(2 * math.pi * (minute / 1440 - 0.375)) + 0.4 * math.sin(minute)
        rows.append(
            (
                minute % 5,
                T0 + minute * MIN,
                {"temp_c": temp, "smoke_obs_pct_m": 0.4, "humidity_pct": 90},
            )
        )
    assert RuleEngine().evaluate(make_batch(rows)) == []


def test_only_fire_devices_run_fire_rules() -> None:
    events = RuleEngine().evaluate(
        make_batch([(0, T0, {"temp_c": 80, "fill_pct": 20})], kinds={0: "bin"})
    )
    assert events == []


def test_bin_full_with_hysteresis() -> None:
    engine = RuleEngine()
    fills = [50, 80, 91, 85, 95, 60, 29, 92]
    events = engine.evaluate(
        make_batch(
            [(3, T0 + i * MIN, {"fill_pct": f}) for i, f in enumerate(fills)], kinds={3: "bin"}
        )
    )
    assert summary(events) == [
        ("dev-3", "bin.full", "raise", T0 + 2 * MIN),
        ("dev-3", "bin.full", "clear", T0 + 6 * MIN),
        ("dev-3", "bin.full", "raise", T0 + 7 * MIN),
    ]
    assert events[0].reason == "fill_pct 91.0 >= 90"
    assert events[1].reason == "emptied: fill_pct 29.0 < 30"


def test_duplicates_and_late_readings_do_not_repeat_alerts() -> None:
    engine = RuleEngine()
    hot = (0, T0, {"temp_c": 80.0})
    assert len(engine.evaluate(make_batch([hot, hot, hot]))) == 1
    assert engine.evaluate(make_batch([hot])) == []  # redelivered in a later batch
    # A late reading from before the alarm says "cold", but newer data says "hot".
    assert engine.evaluate(make_batch([(0, T0 - MIN, {"temp_c": 20.0})])) == []


def test_many_devices_in_one_batch_out_of_order() -> None:
    rows = [(d, T0 + (9 - i) * 1000, {"temp_c": 20 + i * 5}) for d in range(50) for i in range(10)]
    events = RuleEngine().evaluate(make_batch(rows[::-1]))
    # Sorted by time each device goes hot -> cold: a raise at the first hot reading, then a
    # clear when it cools (the rows were given newest-first and in reverse device order).
    assert len(events) == 100
    assert {e.device_id for e in events} == {f"dev-{d}" for d in range(50)}
    assert all(
        events[2 * d].action is Action.raise_ and events[2 * d + 1].action is Action.clear
        for d in range(50)
    )


def test_thresholds_are_parameters() -> None:
    engine = RuleEngine(RuleParams(fire=FireParams(temp_c=68.0)))
    assert engine.evaluate(make_batch([(0, T0, {"temp_c": 60})])) == []
    assert len(engine.evaluate(make_batch([(0, T0 + 1, {"temp_c": 70})]))) == 1


def test_seeded_state_survives_restart() -> None:
    engine = RuleEngine()
    engine.set_active("fire.alarm", 4)
    assert engine.evaluate(make_batch([(4, T0, {"temp_c": 90})])) == []
    assert [e.action for e in engine.evaluate(make_batch([(4, T0 + 1, {"temp_c": 25})]))] == [
        Action.clear
    ]


def test_state_grows_with_the_fleet() -> None:
    engine = RuleEngine(capacity=4)
    events = engine.evaluate(make_batch([(5000, T0, {"temp_c": 99})]))
    assert len(events) == 1 and engine.state.capacity >= 5001


trace = st.lists(
    st.tuples(
        st.integers(0, 3),  # device
        st.integers(0, 40),  # time step
        st.sampled_from([20.0, 52.0, 55.0, 58.0, 90.0]),  # temperature around the thresholds
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(trace, st.lists(st.integers(1, 59), max_size=5), st.randoms())
def test_batch_boundaries_and_duplicates_do_not_change_alerts(
    rows: list[tuple[int, int, float]], cuts: list[int], rnd: object
) -> None:
    # One reading per (device, time): later duplicates of a key repeat the same value.
    unique = {(d, t): temp for d, t, temp in rows}
    readings = sorted((d, T0 + t * 1000, {"temp_c": temp}) for (d, t), temp in unique.items())
    reference = RuleEngine().evaluate(make_batch(readings, device_ids=[f"d{i}" for i in range(4)]))

    # Deliver in time order, cut into arbitrary batches, with every reading sent twice and
    # shuffled within its batch.
    engine = RuleEngine()
    got: list[AlertEvent] = []
    bounds = [0, *sorted({c for c in cuts if c < len(readings)}), len(readings)]
    for lo, hi in itertools.pairwise(bounds):
        chunk = readings[lo:hi] * 2
        rnd.shuffle(chunk)  # type: ignore[attr-defined]
        got.extend(engine.evaluate(make_batch(chunk, device_ids=[f"d{i}" for i in range(4)])))
    assert sorted(summary(got)) == sorted(summary(reference))
    # At most one active alert per device at any time: raise and clear alternate.
    for device in range(4):
        actions = [e.action for e in sorted(got, key=lambda e: e.ts_ms) if e.device_index == device]
        assert all(a != b for a, b in itertools.pairwise(actions))
        assert not actions or actions[0] is Action.raise_
