"""Bin family: fill level (nearly full / full), fill rate, bin fire, knocked over."""

from __future__ import annotations

from typing import Any

import numpy as np

from contract import alerts
from contract.readings import KIND_CODES
from rules.core import Bool, Intp, Round, fmt, transition
from rules.events import Action, Severity
from rules.heat import Heat
from rules.state import NEVER, EngineState

FILL_SLOT = alerts.BIN_FILL_SLOT
FILL_KINDS = alerts.BIN_FILL_KINDS
FILL_SEVERITY = {1: Severity.info, 2: Severity.minor}
FIRE_SLOT = alerts.BIN_FIRE_SLOT
TILT_SLOT = alerts.BIN_TILT_SLOT
_BIN = KIND_CODES["bin"]


def evaluate(r: Round, heat: Heat) -> None:
    """Run every bin rule over the bins in a round."""
    is_bin = r.kinds == _BIN
    if not is_bin.any():
        return
    _fill_level(r, is_bin)
    _fill_rate(r, is_bin)
    _bin_fire(r, is_bin, heat)
    _tilt(r, is_bin)


def _fill_level(r: Round, is_bin: Bool) -> None:
    fill = r.col("fill_pct")
    level = r.s.fill_level
    full = r.p("bin_full_pct")
    stays_full = (fill >= full) | ((level == 2) & (fill >= full - r.p("bin_full_hysteresis_pct")))
    # Nearly full from its threshold, and kept until the bin reads as emptied.
    nearly = (fill >= r.p("bin_nearly_full_pct")) | (
        (level >= 1) & (fill >= r.p("bin_emptied_pct"))
    )
    target = np.where(stays_full, 2, np.where(nearly, 1, 0))
    # A reading whose target is the level, with no change half-confirmed, changes nothing
    # (the count stays 0): only the others go on.
    rows = np.flatnonzero(is_bin & ~np.isnan(fill) & ((target != level) | (r.s.fill_count != 0)))
    if not len(rows):
        return
    target = target[rows].astype(np.int16)
    old = level[rows].astype(np.int16)
    count = r.s.fill_count[rows].astype(np.int16)
    pending = r.s.fill_pending[rows].astype(np.int16)
    same = target == old
    again = ~same & (target == pending)
    count = np.where(same, 0, np.where(again, count + 1, 1))
    pending = np.where(same | again, pending, target)
    change = ~same & (count >= r.p("bin_confirm_readings", rows))
    new = np.where(change, target, old)
    count = np.where(change, 0, count)
    r.s.fill_level[rows] = new
    r.s.fill_pending[rows] = pending
    r.s.fill_count[rows] = count
    if change.any():
        changed = rows[change]
        _emit_fill(r, changed, old[change].tolist(), new[change].tolist())


def _emit_fill(r: Round, rows: Intp, old: list[int], new: list[int]) -> None:
    # Built row by row, but only for the few rows whose level changed.
    fills = r.col("fill_pct")[rows].tolist()
    actions, kinds, severities, reasons = [], [], [], []
    for row, before, after, f in zip(rows.tolist(), old, new, fills, strict=True):
        shown = after or before
        actions.append(transition(before, after))
        kinds.append(FILL_KINDS[shown])
        severities.append(FILL_SEVERITY[shown])
        reasons.append(_fill_reason(r, row, before, after, f))
    r.emit(rows, actions, FILL_SLOT, kinds, "bin", severities, reasons, ("fill_pct", "distance_mm"))


def _fill_reason(r: Round, row: int, before: int, after: int, f: float) -> str:
    if after == 2:
        n = int(r.at("bin_confirm_readings", row))
        return f"fill_pct {fmt(f)} >= {r.at('bin_full_pct', row):g} ({n} readings)"
    if after == 1 and before == 2:
        below = r.at("bin_full_pct", row) - r.at("bin_full_hysteresis_pct", row)
        return f"fill_pct {fmt(f)} < {below:g} (no longer full)"
    if after == 1:
        n = int(r.at("bin_confirm_readings", row))
        return f"fill_pct {fmt(f)} >= {r.at('bin_nearly_full_pct', row):g} ({n} readings)"
    return f"emptied: fill_pct {fmt(f)} < {r.at('bin_emptied_pct', row):g}"


def _fill_rate(r: Round, is_bin: Bool) -> None:
    fill = r.col("fill_pct")
    rows = is_bin & ~np.isnan(fill)
    # Usually every row of the part carries a fill: then slices, not gathers.
    index = None if rows.all() else np.flatnonzero(rows)
    if index is not None and not len(index):
        return
    sel: slice | Intp = slice(None) if index is None else index

    def rows_of(mask: Bool) -> Intp:
        """The rows of the part where a mask over the selected rows is set."""
        return np.flatnonzero(mask) if index is None else index[mask]

    ts, f = r.ts[sel], fill[sel]
    ema, ema_ts, anchor_ts = r.s.ema[sel], r.s.ema_ts[sel], r.s.anchor_ts[sel]

    def p(name: str) -> Any:
        value = r.p(name)
        return value[sel] if np.ndim(value) else value

    reset = (ema_ts == NEVER) | (f < ema - p("fill_emptied_drop_pct"))
    if reset.any():  # a first reading, or the bin was emptied: start again from here
        ema_ts = np.where(reset, ts, ema_ts)
        ema = np.where(reset, f, ema)
        anchor_ts = np.where(reset, ts, anchor_ts)
    alpha = -np.expm1(-(ts - ema_ts) / (p("fill_smoothing_s") * 1000.0))
    ema = ema + alpha * (f - ema)
    # Past twice the horizon, the slope since the anchor becomes the prior and the anchor
    # moves here (the rate follows changing habits without forgetting them at once).
    span = ts - anchor_ts
    slide = (
        ~reset
        & (span >= p("fill_rate_min_span_s") * 1000.0)
        & (span > 2 * p("fill_rate_horizon_s") * 1000.0)
    )
    r.s.ema[sel] = ema
    r.s.ema_ts[sel] = ts
    # The anchor moves only on a reset or a slide: write those rows alone.
    if reset.any():
        moved = rows_of(reset)
        r.s.anchor_fill[moved] = f[reset]
        r.s.anchor_ts[moved] = ts[reset]
    if slide.any():
        moved = rows_of(slide)
        anchor_fill = r.s.anchor_fill[moved]
        slope = (ema[slide] - anchor_fill) / np.maximum(span[slide], 1) * 3_600_000.0
        r.s.prior_rate[moved] = slope
        r.s.anchor_fill[moved] = ema[slide]
        r.s.anchor_ts[moved] = ts[slide]


def _bin_fire(r: Round, is_bin: Bool, heat: Heat) -> None:
    # Only a heat reading can raise and only a burning bin can clear; for the others the
    # normal-since time does not matter (a raise resets it).
    rows = np.flatnonzero(is_bin & heat.has_temp & (heat.heat | r.s.binfire))
    if not len(rows):
        return
    ts = r.ts[rows]
    active = r.s.binfire[rows]
    hot, normal = heat.heat[rows], heat.normal[rows]
    normal_since = np.where(normal, r.s.binfire_normal_since[rows], NEVER)
    normal_since = np.where(normal & (normal_since == NEVER), ts, normal_since)
    raise_ = hot & ~active
    clear = active & normal & (ts - normal_since >= r.p("fire_clear_hold_s", rows) * 1000.0)
    r.s.binfire[rows[raise_]] = True
    r.s.binfire[rows[clear]] = False
    r.s.binfire_normal_since[rows] = normal_since
    temp = r.col("temp_c")

    def raised(row: int) -> str:
        causes = []
        if heat.fixed[row]:
            causes.append(f"temp_c {fmt(float(temp[row]))} >= {r.at('heat_fixed_c', row):g}")
        if heat.ror[row]:
            causes.append(
                f"rate of rise {heat.rate[row]:.1f} C/min >= {r.at('ror_c_per_min', row):g}"
            )
        return "bin on fire: " + "; ".join(causes)

    r.emit(
        rows[raise_],
        Action.raise_,
        FIRE_SLOT,
        "bin.fire",
        "fire",
        Severity.critical,
        raised,
        ("temp_c",),
    )
    r.emit(
        rows[clear],
        Action.clear,
        FIRE_SLOT,
        "bin.fire",
        "fire",
        Severity.critical,
        lambda row: (
            f"temp_c {fmt(float(temp[row]))} back to normal for "
            f"{r.at('fire_clear_hold_s', row):g} s"
        ),
        ("temp_c",),
    )


def _tilt(r: Round, is_bin: Bool) -> None:
    tilt = r.col("tilt_deg")
    # The raises and clears themselves, over the part: a bin that stays tilted (or upright)
    # changes nothing, so most rounds stop here.
    tilted = r.s.tilted
    changes = is_bin & np.where(tilted, tilt < r.p("tilt_clear_deg"), tilt >= r.p("tilt_alarm_deg"))
    rows = np.flatnonzero(changes)
    if not len(rows):
        return
    raise_ = ~tilted[rows]
    clear = ~raise_
    r.s.tilted[rows[raise_]] = True
    r.s.tilted[rows[clear]] = False
    r.emit(
        rows[raise_],
        Action.raise_,
        TILT_SLOT,
        "bin.tilted",
        "bin",
        Severity.minor,
        lambda row: (
            f"tilt_deg {fmt(float(tilt[row]))} >= {r.at('tilt_alarm_deg', row):g} (knocked over)"
        ),
        ("tilt_deg",),
    )
    r.emit(
        rows[clear],
        Action.clear,
        TILT_SLOT,
        "bin.tilted",
        "bin",
        Severity.minor,
        lambda row: (
            f"upright again: tilt_deg {fmt(float(tilt[row]))} < {r.at('tilt_clear_deg', row):g}"
        ),
        ("tilt_deg",),
    )


def status(
    st: EngineState, params_full: float, index: int, params: dict[str, float]
) -> tuple[float, float | None, float | None, int, int] | None:
    """(fill EMA, rate %/h, hours to full, level, reading ts) of a bin; None before any."""
    if index >= st.capacity or st.ema_ts[index] == NEVER:
        return None
    ema = float(st.ema[index])
    span = int(st.ema_ts[index]) - int(st.anchor_ts[index])
    prior = float(st.prior_rate[index])
    rate: float | None
    if span >= params["fill_rate_min_span_s"] * 1000.0:
        slope = (ema - float(st.anchor_fill[index])) / span * 3_600_000.0
        w = min(1.0, span / (params["fill_rate_horizon_s"] * 1000.0))
        rate = slope if prior != prior else w * slope + (1 - w) * prior
    else:
        rate = prior if prior == prior else None
    hours: float | None = None
    if ema >= params_full:
        hours = 0.0
    elif rate is not None and rate > 0.05:
        hours = (params_full - ema) / rate
    return ema, rate, hours, int(st.fill_level[index]), int(st.ema_ts[index])
