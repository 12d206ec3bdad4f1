"""Heat: fixed temperature and rate of rise from each device's recent samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules.core import F64, Bool, Round
from rules.state import NEVER, RING


@dataclass(frozen=True, slots=True)
class Heat:
    """The heat verdict per row of a round (False / NaN where the row has no temp_c)."""

    has_temp: Bool
    fixed: Bool
    ror: Bool
    rate: F64  # C/min, NaN when no sample qualified
    heat: Bool  # fixed or ror: alarm level
    normal: Bool  # below the fixed threshold minus the margin, and no rate of rise
    rise: F64  # C above the coolest sample of the ring (NaN: no temp_c, or an empty ring)

    def part(self, lo: int, hi: int) -> Heat:
        """The verdicts of rows lo..hi (views), for a family that works on a part."""
        return Heat(
            self.has_temp[lo:hi],
            self.fixed[lo:hi],
            self.ror[lo:hi],
            self.rate[lo:hi],
            self.heat[lo:hi],
            self.normal[lo:hi],
            self.rise[lo:hi],
        )


def evaluate(r: Round) -> Heat:
    """Heat verdicts for a round, then record each reading in its device's sample ring."""
    temp = r.col("temp_c")
    has = ~np.isnan(temp)
    ts = r.ts
    # The ring, newest sample first (empty slots hold NEVER and NaN), one strided column
    # per slot: numpy loops slowly over an axis only RING long, so slots are taken one by one.
    records_ts, records_temp = r.s.ring_ts, r.s.ring_temp
    window_ms = r.p("ror_window_s") * 1000.0
    min_ms = r.p("ror_min_span_s") * 1000.0
    threshold = r.p("ror_c_per_min")
    # The rate is the steepest rise against any ring sample between the minimum span and
    # the window. A rise can only reach the rate threshold if the reading is at least
    # threshold x min_span above some sample, so the rate is computed for those rows only.
    rate = np.full(len(ts), np.nan)
    ror = np.zeros(len(ts), bool)
    coolest = records_temp[:, 0]  # NaN only where the ring is empty
    for k in range(1, RING):
        coolest = np.fmin(coolest, records_temp[:, k])
    # How far the reading is above the ring's coolest sample (about the last window): also
    # a warming that corroborates faint smoke (docs/rules.md "Fire").
    rise: F64 = temp - coolest
    # (A hair below the bound, so that rounding can never drop a row that qualifies.)
    candidates = np.flatnonzero(rise >= threshold * min_ms / 60_000.0 - 1e-6)
    if len(candidates):
        c_ts = records_ts[candidates].T  # (RING, candidates)
        span = (ts[candidates] - c_ts).astype(np.float64)
        c_window = r.p("ror_window_s", candidates) * 1000.0
        c_min = r.p("ror_min_span_s", candidates) * 1000.0
        usable = (c_ts != NEVER) & (span >= c_min) & (span <= c_window)
        # Not the longest span: a fire that starts warming the ceiling mid-window must not
        # be averaged down with the cool samples before it (NIST SDC39 D: 12 C/min over
        # the last 20 s, 6 C/min over 40 s). The minimum span still keeps noise out.
        c_temp = records_temp[candidates].T  # (RING, candidates), newest first
        # A sample counts only as cool as the one before it (older): one low outlier in
        # the ring cannot fake a rise against it (UL FSRI's thermocouples dip 4 C for a
        # single sample in clean air). In a real rise the older sample is cooler anyway.
        ref = c_temp.copy()
        ref[:-1] = np.fmax(c_temp[:-1], c_temp[1:])
        rates = np.where(
            usable,
            (temp[candidates] - ref) / np.maximum(span, 1.0) * 60_000.0,
            -np.inf,
        )
        c_rate = rates.max(axis=0)
        c_rate = np.where(c_rate == -np.inf, np.nan, c_rate)
        rate[candidates] = c_rate
        enabled = r.p("ror_enabled", candidates)
        ror[candidates] = (c_rate >= r.p("ror_c_per_min", candidates)) & enabled
    fixed_c = r.p("heat_fixed_c")
    fixed = temp >= fixed_c
    normal = (temp < fixed_c - r.p("heat_clear_margin_c")) & ~ror

    # Keep samples about window/RING apart, so the ring spans the window at any rate. A push
    # shifts the ring by one slot, dropping the oldest sample. At the usual reporting rates
    # every reading with a temperature is pushed: then the whole round shifts at once.
    newest = records_ts[:, 0]
    push = has & ((newest == NEVER) | (ts - newest >= window_ms / RING))
    if push.all():
        # Slot by slot, oldest first, one long strided copy each. (Shifting the (rows,
        # RING) field at once makes numpy loop over the rows, RING values at a time.)
        for k in range(RING - 1, 0, -1):
            records_ts[:, k] = records_ts[:, k - 1]
            records_temp[:, k] = records_temp[:, k - 1]
        records_ts[:, 0] = ts
        records_temp[:, 0] = temp
    elif push.any():
        rows = np.flatnonzero(push)
        records_ts[rows, 1:] = records_ts[rows, :-1]
        records_temp[rows, 1:] = records_temp[rows, :-1]
        records_ts[rows, 0] = ts[rows]
        records_temp[rows, 0] = temp[rows]
    return Heat(has, fixed, ror, rate, fixed | ror, normal, rise)
