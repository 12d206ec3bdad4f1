"""Heat: fixed temperature and rate of rise from each device's recent samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules.core import F64, Bool, Round
from rules.state import NEVER, RING, EngineState


@dataclass(frozen=True, slots=True)
class Heat:
    """The heat verdict per row of a round (False / NaN where the row has no temp_c)."""

    has_temp: Bool
    fixed: Bool
    ror: Bool
    rate: F64  # C/min, NaN when no sample qualified
    heat: Bool  # fixed or ror: alarm level
    normal: Bool  # below the fixed threshold minus the margin, and no rate of rise


def evaluate(r: Round, st: EngineState) -> Heat:
    """Heat verdicts for a round, then push each reading into its device's sample ring."""
    temp = r.col("temp_c")
    has = ~np.isnan(temp)
    devs = r.devs
    ring_ts = st.ring_ts[devs]  # (rows, RING), newest first
    ring_temp = st.ring_temp[devs]
    span = r.ts[:, None] - ring_ts
    window_ms = r.p("ror_window_s") * 1000.0
    min_ms = r.p("ror_min_span_s") * 1000.0
    if np.ndim(window_ms):
        window_ms, min_ms = window_ms[:, None], min_ms[:, None]
    usable = (ring_ts != NEVER) & (span >= min_ms) & (span <= window_ms)
    # The oldest usable sample (the longest span) is the last usable column.
    any_usable = usable.any(axis=1)
    oldest = RING - 1 - np.argmax(usable[:, ::-1], axis=1)
    rows = np.arange(len(devs))
    ref_span = span[rows, oldest]
    rate = np.where(
        any_usable & has,
        (temp - ring_temp[rows, oldest]) / np.maximum(ref_span, 1) * 60_000.0,
        np.nan,
    )
    ror = (rate >= r.p("ror_c_per_min")) & r.p("ror_enabled")
    fixed_c = r.p("heat_fixed_c")
    fixed = temp >= fixed_c
    normal = (temp < fixed_c - r.p("heat_clear_margin_c")) & ~ror

    # Keep samples about window/RING apart, so the ring spans the window at any rate.
    newest = ring_ts[:, 0]
    step = (window_ms.ravel() if np.ndim(window_ms) else window_ms) / RING
    push = has & ((newest == NEVER) | (r.ts - newest >= step))
    if push.any():
        target = devs[push]
        st.ring_ts[target, 1:] = ring_ts[push, :-1]
        st.ring_temp[target, 1:] = ring_temp[push, :-1]
        st.ring_ts[target, 0] = r.ts[push]
        st.ring_temp[target, 0] = temp[push]
    return Heat(has, fixed, ror, rate, fixed | ror, normal)
