"""Bin family: fill level with hysteresis (full at 90 %, cleared when emptied below 30 %)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.schemas import KIND_CODES
from rules.core import Grouped, latch
from rules.events import Action, AlertEvent, Severity
from rules.state import DeviceState

FULL = "bin.full"
KINDS = (FULL,)


@dataclass(frozen=True, slots=True)
class BinParams:
    """Fill thresholds in percent."""

    full_pct: float = 90.0
    clear_pct: float = 30.0  # below this the bin was emptied


def evaluate(grouped: Grouped, state: DeviceState, params: BinParams) -> list[AlertEvent]:
    """Raise bin.full at the full threshold; clear once the bin reads as emptied."""
    batch = grouped.batch
    is_bin = batch.kind == KIND_CODES["bin"]
    fill = batch.col("fill_pct")
    on = is_bin & (fill >= params.full_pct)
    off = is_bin & (fill < params.clear_pct)

    before = state.active[FULL][batch.device]
    now, previous = latch(grouped, on, off, before)
    state.active[FULL][batch.device[grouped.last]] = now[grouped.last]

    events = []
    for row in np.flatnonzero(now != previous).tolist():
        f = float(fill[row])
        if now[row]:
            action, reason = Action.raise_, f"fill_pct {f:.1f} >= {params.full_pct:g}"
        else:
            action, reason = Action.clear, f"emptied: fill_pct {f:.1f} < {params.clear_pct:g}"
        device = int(batch.device[row])
        events.append(
            AlertEvent(
                action=action,
                kind=FULL,
                device_id=batch.device_ids[device],
                device_index=device,
                ts_ms=int(batch.ts_ms[row]),
                severity=Severity.minor,
                reason=reason,
                values={"fill_pct": f},
            )
        )
    return events
