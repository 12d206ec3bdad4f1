"""Turn the fleet, its scenario and the physics into reading payloads (no I/O, no clock)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from typing import Any

from contract.optics import obscuration_pct_m
from simulators.fleet import Fleet, SimDevice
from simulators.haze import CLEAR_EXTINCTION, INDOOR_NOISE
from simulators.models import (
    BIN_FULL_PCT,
    FAST_FILL_CAP_PCT,
    FAST_FILL_PCT_S,
    HEAT_ALARM_C,
    SMOKE_ALARM_PCT_M,
    BinState,
    Noise,
    air_reading,
    bin_reading,
    detector_reading,
    fill_from_distance,
    initial_bin_state,
    step_bin,
)
from simulators.scenario import Scenario

# What the simulator may put in a payload, per kind (DESIGN.md "Reading payload").
FIRE_FIELDS = frozenset(
    {"ts", "seq", "temp_c", "smoke_obs_pct_m", "humidity_pct", "battery_v", "rssi_dbm"}
)
BIN_FIELDS = frozenset(
    {"ts", "seq", "distance_mm", "temp_c", "tilt_deg", "battery_pct", "rssi_dbm"}
)
AIR_FIELDS = frozenset(
    {
        "ts",
        "seq",
        "pm25_ugm3",
        "pm10_ugm3",
        "co_ppm",
        "temp_c",
        "humidity_pct",
        "battery_pct",
        "rssi_dbm",
    }
)


class ReadingSource:
    """Per-device state (sequence numbers, bin levels) and the next payload of each device."""

    def __init__(self, fleet: Fleet, scenario: Scenario, seed: int, epoch0: float) -> None:
        self.fleet = fleet
        self.scenario = scenario
        self.epoch0 = epoch0
        self._noise = Noise(f"sigap-readings:{seed}")
        self._seq = [0] * len(fleet.devices)
        init_rng = random.Random(f"sigap-bins:{seed}")
        self._bins: list[BinState | None] = []
        for device in fleet.devices:
            if device.bin is None:
                self._bins.append(None)
                continue
            start = initial_bin_state(init_rng)
            rush = scenario.fast_fill(device.id)
            self._bins.append(
                BinState(
                    t=start.t,
                    fill_pct=start.fill_pct,
                    fast_fill_from=rush.t0 if rush is not None else None,
                    crews=scenario.crews_for(device.id),
                    fast_fill_pct_s=rush.rate_pct_s if rush is not None else FAST_FILL_PCT_S,
                    fast_fill_to_pct=rush.reach_pct if rush is not None else FAST_FILL_CAP_PCT,
                )
            )

    def bin_state(self, index: int) -> BinState | None:
        """Current state of a bin (None for a fire detector)."""
        return self._bins[index]

    def payload(self, index: int, t: float, ts_ms: int) -> dict[str, Any]:
        """The reading device `index` sends at model time `t`, stamped `ts_ms` (epoch ms)."""
        device = self.fleet.devices[index]
        values: dict[str, float]
        scenario = self.scenario
        touched = device.id in scenario.highlighted
        haze = scenario.haze
        if device.detector is not None:
            rise = scenario.fire_rise_c(device.id, t)
            battery = scenario.battery_limit(device.id, t, "fire") if touched else None
            extra = scenario.drift_pct_m(device.id, t) if touched else 0.0
            humid = 0.0
            if haze is not None:
                inside = haze.indoor_extinction(device.id, device.district, t)
                if inside > 0.0:
                    # Clipped at 3 sigma: the factor stays near 1, never negative.
                    inside *= 1.0 + self._noise.normal(INDOOR_NOISE)
                    extra += obscuration_pct_m(inside)
                    humid = haze.humidity_add_pct(device.district, t)
            values = detector_reading(
                device.detector,
                t,
                self.epoch0,
                rise,
                self._noise,
                battery,
                extra_smoke_pct_m=extra,
                humidity_add_pct=humid,
            )
        elif device.air is not None:
            if haze is not None:
                outdoor = haze.outdoor_extinction(device.district, t)
                humid = haze.humidity_add_pct(device.district, t)
            else:
                outdoor, humid = CLEAR_EXTINCTION, 0.0
            values = air_reading(
                device.air, t, self.epoch0, outdoor, self._noise, humidity_add_pct=humid
            )
        else:
            state = self._bins[index]
            assert state is not None and device.bin is not None  # a bin always has both
            state = step_bin(state, device.bin, t, self.epoch0, self._noise)
            self._bins[index] = state
            if touched:
                values = bin_reading(
                    state,
                    device.bin,
                    self.epoch0,
                    self._noise,
                    fire_rise_c=scenario.bin_fire_rise_c(device.id, t),
                    knocked_over=any(w.what == "knock_over" for w in scenario.active(device.id, t)),
                    battery_limit=scenario.battery_limit(device.id, t, "bin"),
                )
            else:
                values = bin_reading(state, device.bin, self.epoch0, self._noise)
        seq = self._seq[index]
        self._seq[index] = seq + 1
        return {"ts": ts_ms, "seq": seq, **values}


def iter_readings(
    fleet: Fleet,
    scenario: Scenario,
    seed: int,
    epoch0: float,
    until_s: float,
    interval_s: float = 10.0,
) -> Iterator[tuple[float, SimDevice, dict[str, Any]]]:
    """(model time, device, payload) of every reading up to `until_s`, in time order.

    What a run with `event_time = "model"` publishes, without a broker or a clock: each
    device reports every `interval_s` (or its own interval) from a phase spread evenly over
    the first interval; `ts` is `epoch0 + t` in milliseconds. The physics only: silences
    and faults on demand are the publisher's (faults.FaultInjector), not applied here.
    """
    source = ReadingSource(fleet, scenario, seed, epoch0)
    count = len(fleet.devices)
    heap: list[tuple[float, int]] = []
    for index, device in enumerate(fleet.devices):
        every = device.interval_s or interval_s
        heap.append(((index + 0.5) * every / max(count, 1), index))
    heapq.heapify(heap)
    while heap and heap[0][0] <= until_s:
        t, index = heap[0]
        device = fleet.devices[index]
        heapq.heapreplace(heap, (t + (device.interval_s or interval_s), index))
        yield t, device, source.payload(index, t, round((epoch0 + t) * 1000))


# Re-arm a crossing only after a clear fall back, so sensor noise does not repeat the log.
_HEAT_REARM_C = 50.0
_SMOKE_REARM_PCT_M = SMOKE_ALARM_PCT_M / 2
_FULL_REARM_PCT = 30.0


class CrossingWatch:
    """Notices when a device's readings first cross Sigap's default alarm thresholds."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        n = len(fleet.devices)
        self._heat = [False] * n
        self._smoke = [False] * n
        self._full = [False] * n

    def check(self, index: int, payload: dict[str, Any], t: float) -> list[str]:
        """Messages for thresholds this reading crosses (usually none)."""
        device = self.fleet.devices[index]
        notes: list[str] = []
        if device.kind == "fire":
            where = f"{device.id} ({device.zone}, {device.district})"
            temp = float(payload["temp_c"])
            if temp >= HEAT_ALARM_C and not self._heat[index]:
                self._heat[index] = True
                notes.append(f"t={t:.0f}s {where} reports {temp:.1f} C >= {HEAT_ALARM_C:g} C")
            elif temp < _HEAT_REARM_C:
                self._heat[index] = False
            smoke = float(payload["smoke_obs_pct_m"])
            if smoke >= SMOKE_ALARM_PCT_M and not self._smoke[index]:
                self._smoke[index] = True
                notes.append(
                    f"t={t:.0f}s {where} reports smoke {smoke:.1f} %/m >= {SMOKE_ALARM_PCT_M:g} %/m"
                )
            elif smoke < _SMOKE_REARM_PCT_M:
                self._smoke[index] = False
        elif device.depth_mm is not None:
            distance = float(payload["distance_mm"])
            fill = fill_from_distance(distance, device.depth_mm)
            if fill >= BIN_FULL_PCT and not self._full[index]:
                self._full[index] = True
                notes.append(
                    f"t={t:.0f}s {device.id} ({device.district}) reports {fill:.0f} % full "
                    f"(distance {distance:.0f} of {device.depth_mm:.0f} mm) "
                    f">= {BIN_FULL_PCT:g} %"
                )
            elif fill < _FULL_REARM_PCT:
                self._full[index] = False
        return notes
