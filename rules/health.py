"""Device health: battery low, offline (no reading for N intervals), fault (stuck, impossible)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from devices.schemas import KIND_CODES
from rules.core import Round, fmt, quantities
from rules.events import Action, AlertEvent, Severity
from rules.state import NEVER, EngineState

BATTERY_SLOT = "device.battery_low"
OFFLINE_SLOT = "device.offline"
FAULT_SLOT = "device.fault"
_FIRE = KIND_CODES["fire"]


def _severity(kind_code: int) -> Severity:
    # A silent or broken fire detector leaves a building unprotected.
    return Severity.major if kind_code == _FIRE else Severity.minor


def back_online(r: Round, offline: npt.NDArray[np.bool_]) -> None:
    """A reading from an offline device clears device.offline (before other families run)."""
    rows = np.flatnonzero(offline[r.devs])
    if not len(rows):
        return
    offline[r.devs[rows]] = False
    r.emit(
        rows,
        Action.clear,
        OFFLINE_SLOT,
        "device.offline",
        "device",
        lambda row: _severity(int(r.kinds[row])),
        lambda row: "reporting again",
    )


def evaluate(r: Round) -> None:
    """Battery and fault rules for every device in a round."""
    _battery(r)
    _fault(r)


def _battery(r: Round) -> None:
    pct, volts = r.col("battery_pct"), r.col("battery_v")
    has_pct, has_v = ~np.isnan(pct), ~np.isnan(volts)
    rows = has_pct | has_v
    if not rows.any():
        return
    low_pct, low_v = r.p("battery_low_pct"), r.p("battery_low_v")
    low = (pct < low_pct) | (volts < low_v)
    active = r.s.battery_low
    if not low.any() and not active.any():
        return
    ok = (
        rows
        & (~has_pct | (pct >= low_pct + r.p("battery_clear_pct_margin")))
        & (~has_v | (volts >= low_v + r.p("battery_clear_v_margin")))
    )
    raise_ = rows & low & ~active
    clear = rows & ok & active
    r.s.battery_low[raise_] = True
    r.s.battery_low[clear] = False

    def values(row: int) -> dict[str, float]:
        return quantities(r, row, "battery_pct", "battery_v")

    def low_reason(row: int) -> str:
        parts = []
        if pct[row] < r.at("battery_low_pct", row):
            parts.append(f"battery_pct {fmt(float(pct[row]))} < {r.at('battery_low_pct', row):g}")
        if volts[row] < r.at("battery_low_v", row):
            parts.append(f"battery_v {float(volts[row]):.2f} < {r.at('battery_low_v', row):g}")
        return "; ".join(parts)

    r.emit(
        np.flatnonzero(raise_),
        Action.raise_,
        BATTERY_SLOT,
        "device.battery_low",
        "device",
        Severity.minor,
        low_reason,
        values,
    )
    r.emit(
        np.flatnonzero(clear),
        Action.clear,
        BATTERY_SLOT,
        "device.battery_low",
        "device",
        Severity.minor,
        lambda row: "battery replaced or recharged",
        values,
    )


def _fault(r: Round) -> None:
    ts = r.ts
    temp, distance = r.col("temp_c"), r.col("distance_mm")
    has_temp, has_distance = ~np.isnan(temp), ~np.isnan(distance)
    if not (has_temp | has_distance).any():
        return
    n = len(ts)
    too_cold = temp < r.p("temp_min_plausible_c")
    depth = r.s.depth
    too_deep = np.zeros(n, bool)
    if has_distance.any():
        too_deep = (r.kinds == KIND_CODES["bin"]) & (distance > depth * r.p("distance_max_ratio"))

    # Stuck: the same temperature, exactly, many times over a long span.
    same = has_temp & (temp == r.s.stuck_value)
    if same.any():
        count = np.where(same, r.s.stuck_count.astype(np.int64) + 1, 1)
        since = np.where(same, r.s.stuck_since, ts)
        stuck = (
            same
            & (count >= r.p("stuck_min_readings"))
            & (ts - since >= r.p("stuck_min_span_s") * 1000.0)
        )
    else:  # the common case: every value moved
        count, since, stuck = np.ones(n, np.int64), ts, np.zeros(n, bool)
    if has_temp.all():
        r.s.stuck_value[:] = temp
        r.s.stuck_count[:] = np.minimum(count, np.iinfo(np.uint16).max)
        r.s.stuck_since[:] = since
    else:
        r.s.stuck_value[has_temp] = temp[has_temp]
        r.s.stuck_count[has_temp] = np.minimum(count[has_temp], np.iinfo(np.uint16).max)
        r.s.stuck_since[has_temp] = since[has_temp]

    faulty = too_cold | too_deep | stuck
    active = r.s.fault
    if not faulty.any() and not active.any():
        # Nothing to raise or clear; the good-reading count matters only while a fault is
        # active (a fault resets it), so it need not be kept here.
        return
    good_reading = (has_temp | has_distance) & ~faulty
    good = np.where(faulty, 0, r.s.fault_good.astype(np.int64) + good_reading)
    raise_ = faulty & ~active
    clear = active & good_reading & (good >= r.p("fault_clear_readings"))
    good = np.where(clear, 0, good)
    r.s.fault[raise_] = True
    r.s.fault[clear] = False
    r.s.fault_good[:] = np.minimum(good, 255)

    def reason(row: int) -> str:
        parts = []
        if too_cold[row]:
            parts.append(
                f"temp_c {fmt(float(temp[row]))} < plausible {r.at('temp_min_plausible_c', row):g}"
            )
        if too_deep[row]:
            parts.append(
                f"distance_mm {fmt(float(distance[row]))} beyond the bin's depth "
                f"{fmt(float(depth[row]))} mm"
            )
        if stuck[row]:
            parts.append(f"temp_c stuck at {fmt(float(temp[row]))} for {int(count[row])} readings")
        return "; ".join(parts)

    def values(row: int) -> dict[str, float]:
        return quantities(r, row, "temp_c", "distance_mm")

    r.emit(
        np.flatnonzero(raise_),
        Action.raise_,
        FAULT_SLOT,
        "device.fault",
        "device",
        lambda row: _severity(int(r.kinds[row])),
        reason,
        values,
    )
    r.emit(
        np.flatnonzero(clear),
        Action.clear,
        FAULT_SLOT,
        "device.fault",
        "device",
        lambda row: _severity(int(r.kinds[row])),
        lambda row: f"{r.at('fault_clear_readings', row):g} good readings in a row",
        values,
    )


def check_offline(
    st: EngineState, devices: int, now: int, device_ids: Sequence[str]
) -> list[AlertEvent]:
    """device.offline for every device silent longer than its allowance (vectorised)."""
    last = st.last_arrival[:devices]
    silent = (last != NEVER) & ~st.offline[:devices] & (now - last > st.offline_after_ms[:devices])
    events = []
    for d in np.flatnonzero(silent).tolist():
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
                severity=_severity(int(st.kind[d])),
                reason=f"no reading for {minutes:.1f} min (allowed "
                f"{int(st.offline_after_ms[d]) / 60_000:.1f} min)",
            )
        )
    return events
