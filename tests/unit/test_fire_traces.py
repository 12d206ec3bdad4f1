"""Real compartment fires (UL FSRI 2018) replayed as heat detector readings: an alarm after
ignition, never before it."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from rules.engine import RuleEngine
from rules.params import DeviceSpec
from tests.conftest import reference_data
from tests.unit.conftest import make_batch

EXPERIMENTS = ["01_Data_Overstuffed_Closed_Center_1", "01_Data_RedAccent_Open_Corner_1"]
QUADRANTS = "ABCD"
T0 = 1_790_000_000_000


def ignition_offset_s(name: str, rows: list[dict[str, str]]) -> float:
    """The `Time` value at ignition, from the experiment's events file (it should be 0)."""
    events = reference_data("fire-traces", "ul-fsri-2018", f"{name}_Events.csv")
    with events.open() as handle:
        ignition = next(row["Time"] for row in csv.DictReader(handle) if row["Event"] == "Ignition")
    at = datetime.strptime(ignition, "%Y-%m-%d-%H:%M:%S")
    first = datetime.strptime(rows[0]["Timestamp"], "%Y-%m-%d %H:%M:%S")
    return float(rows[0]["Time"]) + (at - first).total_seconds()


def load(name: str) -> list[dict[str, str]]:
    path: Path = reference_data("fire-traces", "ul-fsri-2018", f"{name}.csv")
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("every_s", [1, 10])
@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("quadrant", QUADRANTS)
def test_ceiling_detector_alarms_after_ignition_only(
    name: str, quadrant: str, every_s: int
) -> None:
    rows = load(name)
    ignition = ignition_offset_s(name, rows)
    assert abs(ignition) <= 1.0, "the Time column counts from ignition"
    column = f"Quadrant {quadrant} Temperature 25 mm Below Ceiling"
    engine = RuleEngine([DeviceSpec(0, f"{quadrant}-ceiling", "fire")])
    readings = [(float(r["Time"]), float(r[column])) for r in rows if r[column] not in ("", "nan")]
    assert readings[0][0] < -100, "the trace starts with a pre-ignition baseline"
    readings = readings[::every_s]  # a detector reporting every second or every 10 s

    events = []
    for t, temp in readings:  # one reading per batch, as a detector sends them
        ts = T0 + int(t * 1000)
        events += [
            (t, e)
            for e in engine.evaluate(
                make_batch([(0, ts, {"temp_c": temp})], device_ids=engine.device_ids), ts
            )
        ]

    before = [(t, e.kind) for t, e in events if t < ignition]
    assert before == [], f"alarm before ignition: {before}"
    alarms = [(t, e) for t, e in events if e.kind in ("fire.alarm", "fire.confirmed")]
    assert alarms, f"{name} quadrant {quadrant}: no verified alarm after ignition"
    first_alert_t = events[0][0]
    alarm_t, alarm = alarms[0]
    peak = max(temp for _, temp in readings)
    print(
        f"{name} quadrant {quadrant} every {every_s} s: first alert {events[0][1].kind} "
        f"{first_alert_t - ignition:.0f} s after ignition, {alarm.kind} "
        f"{alarm_t - ignition:.0f} s after ignition ({alarm.reason}); peak {peak:.0f} C"
    )
    assert np.isfinite(alarm_t)
