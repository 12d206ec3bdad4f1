"""Vectorised building blocks shared by rule families (no I/O, no clock)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ingest.batch import ReadingBatch

Bool = npt.NDArray[np.bool_]
Intp = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Grouped:
    """A batch sorted by (device, event time), with each row's group boundaries."""

    batch: ReadingBatch
    start: Intp  # per row: index of the first row of its device's group
    first: Bool  # per row: first row of its group
    last: Bool  # per row: last row of its group

    @staticmethod
    def of(batch: ReadingBatch) -> Grouped:
        """Sort a batch by device then time (stable, so duplicates keep arrival order)."""
        order = np.lexsort((batch.ts_ms, batch.device))
        sorted_batch = batch.take(order)
        device = sorted_batch.device
        n = len(device)
        first = np.ones(n, dtype=bool)
        first[1:] = device[1:] != device[:-1]
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        return Grouped(sorted_batch, start, first, last)


def latch(grouped: Grouped, on: Bool, off: Bool, before: Bool) -> tuple[Bool, Bool]:
    """Hysteresis over a grouped batch: `on` sets, `off` clears, other rows keep the state.

    `before` is each row's device state from earlier batches. Returns (state after each
    row, state before each row); a row where they differ is a transition.
    """
    n = len(on)
    rows = np.arange(n)
    decisive = on | off
    last_decisive = np.maximum.accumulate(np.where(decisive, rows, -1))
    # A decisive row counts only if it belongs to the same device group as this row.
    known = last_decisive >= grouped.start
    state = np.where(known, on[np.maximum(last_decisive, 0)], before)
    previous = np.empty(n, dtype=bool)
    previous[1:] = state[:-1]
    previous[grouped.first] = before[grouped.first]
    return state, previous
