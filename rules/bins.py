"""Bin family: fill level (nearly full / full), fill rate, bin fire, knocked over."""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.schemas import KIND_CODES
from rules.core import Round, fmt, quantities
from rules.events import Action, Severity
from rules.heat import Heat
from rules.state import NEVER, EngineState

FILL_SLOT = "bin.fill"
FILL_KINDS = {1: "bin.nearly_full", 2: "bin.full"}
FILL_SEVERITY = {1: Severity.info, 2: Severity.minor}
FIRE_SLOT = "bin.fire"
TILT_SLOT = "bin.tilted"
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


def _fill_level(r: Round, is_bin: np.ndarray) -> None:
    fill = r.col("fill_pct")
    rows = is_bin & ~np.isnan(fill)
    if not rows.any():
        return
    level = r.s.fill_level.astype(np.int16)
    full = r.p("bin_full_pct")
    stays_full = (fill >= full) | ((level == 2) & (fill >= full - r.p("bin_full_hysteresis_pct")))
    # Nearly full from its threshold, and kept until the bin reads as emptied.
    nearly = (fill >= r.p("bin_nearly_full_pct")) | (
        (level >= 1) & (fill >= r.p("bin_emptied_pct"))
    )
    target = np.where(stays_full, 2, np.where(nearly, 1, 0)).astype(np.int16)
    count = r.s.fill_count.astype(np.int16)
    same = (target == level) | ~rows
    if same.all() and not count.any():
        return  # steady: no level wants to change, and no change is half-confirmed
    pending = r.s.fill_pending.astype(np.int16)
    again = ~same & (target == pending)
    count = np.where(same, 0, np.where(again, count + 1, 1))
    pending = np.where(same | again, pending, target)
    change = rows & ~same & (count >= r.p("bin_confirm_readings"))
    new_level = np.where(change, target, level)
    count = np.where(change, 0, count)
    r.s.fill_level[rows] = new_level[rows]
    r.s.fill_pending[rows] = pending[rows]
    r.s.fill_count[rows] = count[rows]

    changed = np.flatnonzero(change)
    if not len(changed):
        return

    def reason(row: int) -> str:
        f = float(fill[row])
        after = int(new_level[row])
        n = int(r.at("bin_confirm_readings", row))
        if after == 2:
            return f"fill_pct {fmt(f)} >= {r.at('bin_full_pct', row):g} ({n} readings)"
        if after == 1 and int(level[row]) == 2:
            below = r.at("bin_full_pct", row) - r.at("bin_full_hysteresis_pct", row)
            return f"fill_pct {fmt(f)} < {below:g} (no longer full)"
        if after == 1:
            return f"fill_pct {fmt(f)} >= {r.at('bin_nearly_full_pct', row):g} ({n} readings)"
        return f"emptied: fill_pct {fmt(f)} < {r.at('bin_emptied_pct', row):g}"

    for row in changed.tolist():
        before, after = int(level[row]), int(new_level[row])
        action = Action.raise_ if before == 0 else Action.clear if after == 0 else Action.update
        shown = after or before
        r.emit(
            [row],
            action,
            FILL_SLOT,
            FILL_KINDS[shown],
            "bin",
            FILL_SEVERITY[shown],
            reason,
            lambda row: quantities(r, row, "fill_pct", "distance_mm"),
        )


def _fill_rate(r: Round, is_bin: np.ndarray) -> None:
    fill = r.col("fill_pct")
    rows = is_bin & ~np.isnan(fill)
    if not rows.any():
        return
    whole = bool(rows.all())
    sel: slice | np.ndarray = slice(None) if whole else rows
    ts, f = r.ts[sel], fill[sel]
    ema, ema_ts = r.s.ema[sel], r.s.ema_ts[sel]
    anchor_fill, anchor_ts = r.s.anchor_fill[sel], r.s.anchor_ts[sel]

    def p(name: str) -> Any:
        value = r.p(name)
        return value[sel] if np.ndim(value) else value

    reset = (ema_ts == NEVER) | (f < ema - p("fill_emptied_drop_pct"))
    if reset.any():  # a first reading, or the bin was emptied: start again from here
        ema_ts = np.where(reset, ts, ema_ts)
        ema = np.where(reset, f, ema)
        anchor_fill = np.where(reset, f, anchor_fill)
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
    if slide.any():
        slope = (ema - anchor_fill) / np.maximum(span, 1) * 3_600_000.0
        r.s.prior_rate[np.flatnonzero(rows)[slide]] = slope[slide]
        anchor_fill = np.where(slide, ema, anchor_fill)
        anchor_ts = np.where(slide, ts, anchor_ts)

    r.s.ema[sel] = ema
    r.s.ema_ts[sel] = ts
    r.s.anchor_fill[sel] = anchor_fill
    r.s.anchor_ts[sel] = anchor_ts


def _bin_fire(r: Round, is_bin: np.ndarray, heat: Heat) -> None:
    rows = is_bin & heat.has_temp
    if not rows.any():
        return
    ts = r.ts
    active = r.s.binfire
    if not heat.heat.any() and not active.any():
        # No bin burning and none starting; the normal-since time only matters while one
        # burns (a raise resets it), so it need not be kept.
        return
    normal_since = r.s.binfire_normal_since
    raise_ = rows & heat.heat & ~active
    normal_since = np.where(rows & ~heat.normal, NEVER, normal_since)
    normal_since = np.where(rows & heat.normal & (normal_since == NEVER), ts, normal_since)
    clear = rows & active & heat.normal & (ts - normal_since >= r.p("fire_clear_hold_s") * 1000.0)
    r.s.binfire[raise_] = True
    r.s.binfire[clear] = False
    r.s.binfire_normal_since[rows] = normal_since[rows]
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

    def values(row: int) -> dict[str, float]:
        return quantities(r, row, "temp_c")

    r.emit(
        np.flatnonzero(raise_),
        Action.raise_,
        FIRE_SLOT,
        "bin.fire",
        "fire",
        Severity.critical,
        raised,
        values,
    )
    r.emit(
        np.flatnonzero(clear),
        Action.clear,
        FIRE_SLOT,
        "bin.fire",
        "fire",
        Severity.critical,
        lambda row: (
            f"temp_c {fmt(float(temp[row]))} back to normal for "
            f"{r.at('fire_clear_hold_s', row):g} s"
        ),
        values,
    )


def _tilt(r: Round, is_bin: np.ndarray) -> None:
    tilt = r.col("tilt_deg")
    rows = is_bin & ~np.isnan(tilt)
    if not rows.any():
        return
    active = r.s.tilted
    raise_ = rows & ~active & (tilt >= r.p("tilt_alarm_deg"))
    clear = rows & active & (tilt < r.p("tilt_clear_deg"))
    r.s.tilted[raise_] = True
    r.s.tilted[clear] = False

    def values(row: int) -> dict[str, float]:
        return quantities(r, row, "tilt_deg")

    r.emit(
        np.flatnonzero(raise_),
        Action.raise_,
        TILT_SLOT,
        "bin.tilted",
        "bin",
        Severity.minor,
        lambda row: (
            f"tilt_deg {fmt(float(tilt[row]))} >= {r.at('tilt_alarm_deg', row):g} (knocked over)"
        ),
        values,
    )
    r.emit(
        np.flatnonzero(clear),
        Action.clear,
        TILT_SLOT,
        "bin.tilted",
        "bin",
        Severity.minor,
        lambda row: (
            f"upright again: tilt_deg {fmt(float(tilt[row]))} < {r.at('tilt_clear_deg', row):g}"
        ),
        values,
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
