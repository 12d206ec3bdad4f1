"""Fire family: heat (fixed temperature) and smoke obscuration on fire detectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.schemas import KIND_CODES
from rules.core import Grouped, latch
from rules.events import Action, AlertEvent, Severity
from rules.state import DeviceState

ALARM = "fire.alarm"
KINDS = (ALARM,)


@dataclass(frozen=True, slots=True)
class FireParams:
    """Fire thresholds; clearing needs the values to fall back by the hysteresis margins."""

    temp_c: float = 57.0  # fixed-temperature heat detector, ordinary class
    smoke_obs_pct_m: float = 10.0
    temp_clear_margin_c: float = 5.0
    smoke_clear_ratio: float = 0.5


def evaluate(grouped: Grouped, state: DeviceState, params: FireParams) -> list[AlertEvent]:
    """Raise fire.alarm on heat or smoke over threshold; clear when both are well below."""
    batch = grouped.batch
    is_fire = batch.kind == KIND_CODES["fire"]
    temp = batch.col("temp_c")
    smoke = batch.col("smoke_obs_pct_m")
    hot = temp >= params.temp_c  # NaN compares False: a missing value never alarms
    smoky = smoke >= params.smoke_obs_pct_m
    on = is_fire & (hot | smoky)
    temp_low = np.isnan(temp) | (temp < params.temp_c - params.temp_clear_margin_c)
    smoke_low = np.isnan(smoke) | (smoke < params.smoke_obs_pct_m * params.smoke_clear_ratio)
    # A reading with neither value (say, battery only) says nothing about fire.
    has_any = ~(np.isnan(temp) & np.isnan(smoke))
    off = is_fire & has_any & temp_low & smoke_low

    before = state.active[ALARM][batch.device]
    now, previous = latch(grouped, on, off, before)
    state.active[ALARM][batch.device[grouped.last]] = now[grouped.last]

    events = []
    for row in np.flatnonzero(now != previous).tolist():
        t, s = float(temp[row]), float(smoke[row])
        values = {k: v for k, v in (("temp_c", t), ("smoke_obs_pct_m", s)) if v == v}
        if now[row]:
            causes = []
            if hot[row]:
                causes.append(f"temp_c {t:g} >= {params.temp_c:g}")
            if smoky[row]:
                causes.append(f"smoke_obs_pct_m {s:g} >= {params.smoke_obs_pct_m:g}")
            action, reason = Action.raise_, "; ".join(causes)
        else:
            shown = ", ".join(f"{k} {v:g}" for k, v in values.items())
            action, reason = Action.clear, f"back to normal: {shown}"
        device = int(batch.device[row])
        events.append(
            AlertEvent(
                action=action,
                kind=ALARM,
                device_id=batch.device_ids[device],
                device_index=device,
                ts_ms=int(batch.ts_ms[row]),
                severity=Severity.critical,
                reason=reason,
                values=values,
            )
        )
    return events
