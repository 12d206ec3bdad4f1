"""Device health: battery low, offline (no reading for N intervals), fault (stuck, impossible)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from contract import alerts
from contract.readings import KIND_CODES, QUANTITIES
from rules.core import F64, Bool, Round, fmt
from rules.events import Action, AlertEvent, Severity
from rules.state import NEVER, EngineState

BATTERY_SLOT = alerts.BATTERY_SLOT
OFFLINE_SLOT = alerts.OFFLINE_SLOT
FAULT_SLOT = alerts.FAULT_SLOT
_FIRE = KIND_CODES["fire"]
_BIN = KIND_CODES["bin"]


def severity_of(kind_code: int) -> Severity:
    """A device alert's severity: a silent or broken fire detector leaves a building
    unprotected."""
    return Severity.major if kind_code == _FIRE else Severity.minor


# What a sensor measures, as opposed to its condition (battery, radio): a reading that
# carries one of these after a reported fault shows the sensor works again.
_MEASURED = [name for name in QUANTITIES if name not in ("battery_v", "battery_pct", "rssi_dbm")]


def back_online(r: Round) -> None:
    """A reading from an offline device clears device.offline (before other families run)."""
    rows = np.flatnonzero(r.s.offline)
    if not len(rows):
        return
    r.s.offline[rows] = False
    r.emit(
        rows,
        Action.clear,
        OFFLINE_SLOT,
        "device.offline",
        "device",
        lambda row: severity_of(int(r.kinds[row])),
        lambda row: "reporting again",
    )


def evaluate(r: Round) -> None:
    """Battery and fault rules for every device in a round."""
    _battery(r)
    _fault(r)


def _battery(r: Round) -> None:
    pct, volts = r.col("battery_pct"), r.col("battery_v")
    low = (pct < r.p("battery_low_pct")) | (volts < r.p("battery_low_v"))
    active = r.s.battery_low
    # Only a low reading without the alert can raise, and only a reading with the alert can
    # clear. With clear margins >= 0 a low reading cannot clear, so a device that stays low
    # changes nothing and most rounds stop here; a negative margin clears below the low
    # threshold, so then every active device's reading is looked at.
    margins = (r.p("battery_clear_pct_margin"), r.p("battery_clear_v_margin"))
    if all(np.all(m >= 0) for m in margins):
        rows = np.flatnonzero(low != active)
    else:
        rows = np.flatnonzero(low | active)
    if not len(rows):
        return
    low_pct, low_v = r.p("battery_low_pct", rows), r.p("battery_low_v", rows)
    row_pct, row_v = pct[rows], volts[rows]
    has_pct, has_v = ~np.isnan(row_pct), ~np.isnan(row_v)
    ok = (
        (has_pct | has_v)
        & (~has_pct | (row_pct >= low_pct + r.p("battery_clear_pct_margin", rows)))
        & (~has_v | (row_v >= low_v + r.p("battery_clear_v_margin", rows)))
    )
    active = active[rows]
    raise_ = low[rows] & ~active
    clear = ok & active
    r.s.battery_low[rows[raise_]] = True
    r.s.battery_low[rows[clear]] = False

    raised = rows[raise_]
    reasons = []
    # Python numbers for the few rows raised: a comparison with a numpy scalar costs more.
    for row, p, v in zip(
        raised.tolist(), pct[raised].tolist(), volts[raised].tolist(), strict=True
    ):
        parts = []
        if p < r.at("battery_low_pct", row):
            parts.append(f"battery_pct {fmt(p)} < {r.at('battery_low_pct', row):g}")
        if v < r.at("battery_low_v", row):
            parts.append(f"battery_v {v:.2f} < {r.at('battery_low_v', row):g}")
        reasons.append("; ".join(parts))

    shown = ("battery_pct", "battery_v")
    r.emit(
        raised,
        Action.raise_,
        BATTERY_SLOT,
        "device.battery_low",
        "device",
        Severity.minor,
        reasons,
        shown,
    )
    r.emit(
        rows[clear],
        Action.clear,
        BATTERY_SLOT,
        "device.battery_low",
        "device",
        Severity.minor,
        lambda row: "battery replaced or recharged",
        shown,
    )


def _fault(r: Round) -> None:
    temp, distance = r.col("temp_c"), r.col("distance_mm")
    stuck, count = _stuck(r, temp)
    too_cold = temp < r.p("temp_min_plausible_c")
    if np.isnan(distance).all():  # fire detectors: no distance, no depth to read
        too_deep = np.zeros(len(distance), bool)
    else:
        too_deep = (r.kinds == _BIN) & (distance > r.s.depth * r.p("distance_max_ratio"))
    # A fire detector whose clear-air reading has crept up (rules/haze.py learns it) needs
    # its chamber cleaned: a fault for the technicians, never a fire alarm.
    faulty = too_cold | too_deep | stuck
    dirty = faulty  # a stand-in of the right shape, read only where drift_possible
    if r.drift_possible:
        dirty = (r.kinds == _FIRE) & (r.s.smoke_base >= r.p("drift_fault_pct_m"))
        faulty = faulty | dirty
    # Only a faulty reading can raise and only an active fault can clear; the good-reading
    # count matters only while a fault is active (a fault resets it), so the other rows
    # need not keep it.
    rows = np.flatnonzero(faulty | r.s.fault)
    if not len(rows):
        return
    row_faulty = faulty[rows]
    good_reading = (~np.isnan(temp[rows]) | ~np.isnan(distance[rows])) & ~row_faulty
    needed = r.p("fault_clear_readings", rows)
    sensor_back: set[int] = set()
    if r.reported:
        needed, sensor_back = _after_reports(r, rows, row_faulty, good_reading, needed)
    good = np.where(row_faulty, 0, r.s.fault_good[rows].astype(np.int64) + good_reading)
    active = r.s.fault[rows]
    raise_ = row_faulty & ~active
    clear = active & good_reading & (good >= needed)
    good = np.where(clear, 0, good)
    r.s.fault[rows[raise_]] = True
    r.s.fault[rows[clear]] = False
    r.s.fault_good[rows] = np.minimum(good, 255)

    def reason(row: int) -> str:
        parts = []
        if too_cold[row]:
            parts.append(
                f"temp_c {fmt(float(temp[row]))} < plausible {r.at('temp_min_plausible_c', row):g}"
            )
        if too_deep[row]:
            parts.append(
                f"distance_mm {fmt(float(distance[row]))} beyond the bin's depth "
                f"{fmt(float(r.s.depth[row]))} mm"
            )
        if stuck[row]:
            parts.append(f"temp_c stuck at {fmt(float(temp[row]))} for {count[row]} readings")
        if r.drift_possible and dirty[row]:
            parts.append(
                f"maintenance: clear-air smoke has crept up to "
                f"{fmt(float(r.s.smoke_base[row]))} %/m (limit {r.at('drift_fault_pct_m', row):g}):"
                " clean or replace the smoke chamber"
            )
        return "; ".join(parts)

    def severity(row: int) -> Severity:
        return severity_of(int(r.kinds[row]))

    shown = ("temp_c", "distance_mm")
    r.emit(
        rows[raise_], Action.raise_, FAULT_SLOT, "device.fault", "device", severity, reason, shown
    )

    def cleared(row: int) -> str:
        if row in sensor_back:
            return "the sensor reports readings again"
        return f"{r.at('fault_clear_readings', row):g} good readings in a row"

    r.emit(
        rows[clear], Action.clear, FAULT_SLOT, "device.fault", "device", severity, cleared, shown
    )
    if sensor_back and r.reported is not None:
        for row in rows[clear].tolist():
            if row in sensor_back:
                del r.reported[int(r.devs[row])]


def _after_reports(
    r: Round, rows: npt.NDArray[np.intp], row_faulty: Bool, good_reading: Bool, needed: Any
) -> tuple[Any, set[int]]:
    """For devices whose sensor reported a fault: a reading after the report that carries a
    measurement clears it at once, and the report's own reading never counts as good
    (updates `good_reading`). The readings needed per row, and the rows whose sensor is
    back."""
    reported = r.reported or {}
    needed = np.broadcast_to(np.asarray(needed), rows.shape).copy()
    back: set[int] = set()
    found = [
        (i, row, at)
        for i, row in enumerate(rows.tolist())
        if (at := reported.get(int(r.devs[row]))) is not None
    ]
    if not found:
        return needed, back
    # Few rows (devices with a reported fault): their quantities only, not whole columns.
    at_rows = np.array([row for _, row, _ in found], np.intp)
    quantities = np.stack([r.col_at(name, at_rows) for name in _MEASURED])
    carried: Bool = np.asarray((~np.isnan(quantities)).any(axis=0), bool)
    for k, (i, row, at) in enumerate(found):
        measured = bool(carried[k])
        if int(r.ts[row]) > at and measured and not row_faulty[i]:
            good_reading[i] = True
            needed[i] = 1
            back.add(row)
        else:
            good_reading[i] = False
    return needed, back


def _stuck(r: Round, temp: F64) -> tuple[Bool, dict[int, int]]:
    """Advance the run of identical temperatures; the rows now stuck, with their run lengths."""
    ts = r.ts
    # An exact repeat is rare (temperatures carry noise): restart every run, then put the
    # repeats back.
    repeats = np.flatnonzero(temp == r.s.stuck_value)  # NaN never equals
    count = r.s.stuck_count[repeats].astype(np.int64) + 1
    since = r.s.stuck_since[repeats]
    has_temp = ~np.isnan(temp)
    if has_temp.all():
        r.s.stuck_value[:] = temp
        r.s.stuck_since[:] = ts
        r.s.stuck_count[:] = 1
    else:
        rows = np.flatnonzero(has_temp)
        r.s.stuck_value[rows] = temp[rows]
        r.s.stuck_since[rows] = ts[rows]
        r.s.stuck_count[rows] = 1
    r.s.stuck_count[repeats] = np.minimum(count, np.iinfo(np.uint16).max)
    r.s.stuck_since[repeats] = since
    now_stuck = (count >= r.p("stuck_min_readings", repeats)) & (
        ts[repeats] - since >= r.p("stuck_min_span_s", repeats) * 1000.0
    )
    stuck = np.zeros(len(ts), bool)
    stuck[repeats[now_stuck]] = True
    return stuck, dict(zip(repeats[now_stuck].tolist(), count[now_stuck].tolist(), strict=True))


def check_offline(
    st: EngineState, devices: int, now: int, device_ids: Sequence[str]
) -> list[AlertEvent]:
    """device.offline for every device silent longer than its allowance (vectorised)."""
    last = st.last_arrival[:devices]
    # The contiguous arrays first; the offline flags (strided, in the records) only for the
    # few devices that are silent.
    silent = np.flatnonzero((last != NEVER) & (now - last > st.offline_after_ms[:devices]))
    silent = silent[~st.offline[silent]]
    events = []
    for d in silent.tolist():
        st.offline[d] = True
        minutes = (now - int(last[d])) / 60_000
        events.append(
            AlertEvent(
                action=Action.raise_,
                slot=OFFLINE_SLOT,
                kind="device.offline",
                category="device",
                device_id=device_ids[d],
                device_index=d,
                ts_ms=now,
                severity=severity_of(int(st.kind[d])),
                reason=f"no reading for {minutes:.1f} min (allowed "
                f"{int(st.offline_after_ms[d]) / 60_000:.1f} min)",
            )
        )
    return events
