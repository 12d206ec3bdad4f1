"""Which bins a plan collects: full ones, and those predicted to be full before the end
of the collection window; never a burning bin or one already on a crew's route (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from contract.bins import BinStatus

MS_PER_H = 3_600_000


class Why(StrEnum):
    """Why a bin is in a plan."""

    full = "full"  # full now (or its bin.full alert is active)
    predicted_full = "predicted_full"  # full before the window ends, at its fill rate


class Excluded(StrEnum):
    """Why a bin is not in a plan."""

    burning = "burning"  # an active bin.fire alert: crews keep away until it is resolved
    on_route = "on_route"  # a pending stop of another route that is still running
    no_reading = "no_reading"  # no fill reading since the rule engine started
    not_due = "not_due"  # not full before the window ends (or not filling)


@dataclass(frozen=True, slots=True)
class BinFacts:
    """What selection needs to know about one bin."""

    id: str
    lat: float
    lon: float
    status: BinStatus | None
    burning: bool = False
    full_alert: bool = False  # an active bin.full alert (the engine may not have state yet)
    on_route: int | None = None  # id of a running route that will collect it


@dataclass(frozen=True, slots=True)
class Chosen:
    """A selected bin, why, and when it is (or was) expected to be full (epoch ms)."""

    bin: BinFacts
    why: Why
    full_at_ms: int | None


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen bins, and every other bin with the reason it was left out."""

    chosen: list[Chosen]
    excluded: list[tuple[BinFacts, Excluded]]


def fill_at(status: BinStatus | None, at_ms: int) -> float:
    """Fill (%) expected at a moment, from the latest fill and rate; capped at 100.

    Unknown fill (no reading, but a bin.full alert) counts as 100: plan for a full bin.
    """
    if status is None:
        return 100.0
    fill = status.fill_pct
    if status.rate_pct_per_h is not None and status.rate_pct_per_h > 0:
        fill += status.rate_pct_per_h * max(0, at_ms - status.reading_ts_ms) / MS_PER_H
    return min(100.0, max(0.0, fill))


def full_at_ms(status: BinStatus) -> int | None:
    """When the bin is (or was) expected to reach full; None when it is not filling."""
    if status.hours_to_full is None:
        return None
    return status.reading_ts_ms + round(status.hours_to_full * MS_PER_H)


def select_bins(bins: Iterable[BinFacts], window_end_ms: int) -> Selection:
    """Split bins into those to collect by the window's end and the rest."""
    chosen: list[Chosen] = []
    excluded: list[tuple[BinFacts, Excluded]] = []
    for facts in bins:
        status = facts.status
        if facts.burning:
            excluded.append((facts, Excluded.burning))
        elif facts.on_route is not None:
            excluded.append((facts, Excluded.on_route))
        elif status is not None and (status.level >= 2 or status.hours_to_full == 0.0):
            chosen.append(Chosen(facts, Why.full, full_at_ms(status)))
        elif status is None and facts.full_alert:
            chosen.append(Chosen(facts, Why.full, None))
        elif status is None:
            excluded.append((facts, Excluded.no_reading))
        else:
            due = full_at_ms(status)
            if due is not None and due <= window_end_ms:
                chosen.append(Chosen(facts, Why.predicted_full, due))
            else:
                excluded.append((facts, Excluded.not_due))
    return Selection(chosen, excluded)
