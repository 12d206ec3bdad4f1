"""A bin's fill status as the rules compute it and the API, the store and routes read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BinStatus:
    """A bin's smoothed fill, fill rate and predicted time until full."""

    fill_pct: float
    rate_pct_per_h: float | None
    hours_to_full: float | None
    level: int  # 0 ok, 1 nearly full, 2 full
    reading_ts_ms: int = 0  # event time of the latest fill reading
