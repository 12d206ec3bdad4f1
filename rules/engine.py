"""The rule engine: runs every registered rule family over each batch, vectorised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.batch import ReadingBatch
from rules import bins, fire
from rules.core import Grouped
from rules.events import AlertEvent
from rules.state import DeviceState


@dataclass(frozen=True, slots=True)
class RuleParams:
    """Parameters of every family."""

    fire: fire.FireParams = field(default_factory=fire.FireParams)
    bins: bins.BinParams = field(default_factory=bins.BinParams)


@dataclass(frozen=True, slots=True)
class Family:
    """One rule family: the alert kinds it owns and its pure evaluate function."""

    name: str
    kinds: tuple[str, ...]
    evaluate: Callable[[Grouped, DeviceState, Any], list[AlertEvent]]
    params: Callable[[RuleParams], Any]


# The explicit registry of families, evaluated in this order.
FAMILIES: tuple[Family, ...] = (
    Family("fire", fire.KINDS, fire.evaluate, lambda p: p.fire),
    Family("bins", bins.KINDS, bins.evaluate, lambda p: p.bins),
)


class RuleEngine:
    """Holds per-device state and evaluates batches in event-time order per device.

    A reading no newer than the last one evaluated for its device (a duplicate delivery
    or a late arrival) is stored by ingest but does not move the rule state.
    """

    def __init__(self, params: RuleParams | None = None, capacity: int = 1024) -> None:
        self.params = params or RuleParams()
        kinds = tuple(kind for family in FAMILIES for kind in family.kinds)
        self.state = DeviceState(kinds, capacity)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every alert kind the engine can raise."""
        return self.state.kinds

    def set_active(self, kind: str, device_index: int, active: bool = True) -> None:
        """Seed a latch (e.g. from alerts still open in the database after a restart)."""
        self.state.ensure(device_index + 1)
        self.state.active[kind][device_index] = active

    def evaluate(self, batch: ReadingBatch) -> list[AlertEvent]:
        """Alert events for a batch, ordered by device then event time."""
        if not len(batch):
            return []
        self.state.ensure(int(batch.device.max()) + 1)
        fresh = batch.ts_ms > self.state.last_ts[batch.device]
        if not fresh.all():
            batch = batch.take(np.flatnonzero(fresh))
            if not len(batch):
                return []
        grouped = Grouped.of(batch)
        events: list[AlertEvent] = []
        for family in FAMILIES:
            events.extend(family.evaluate(grouped, self.state, family.params(self.params)))
        ends = grouped.batch
        self.state.last_ts[ends.device[grouped.last]] = ends.ts_ms[grouped.last]
        events.sort(key=lambda e: (e.device_index, e.ts_ms))
        return events
