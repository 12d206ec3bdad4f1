"""What a rule family sees: one round of readings (at most one per device), vectorised."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.readings import Q_INDEX
from contract.thresholds import RuleParams
from rules.events import Action, AlertEvent, Severity
from rules.state import Fields

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Intp = npt.NDArray[np.intp]


class ParamTable:
    """Distinct parameter profiles as columns, so a round gathers thresholds per device."""

    def __init__(self) -> None:
        self.profiles: list[RuleParams] = []
        self._index: dict[RuleParams, int] = {}
        self._columns: dict[str, npt.NDArray[Any]] = {}

    def profile(self, params: RuleParams) -> int:
        """The profile number of these parameters (added if new)."""
        number = self._index.get(params)
        if number is None:
            number = len(self.profiles)
            self.profiles.append(params)
            self._index[params] = number
            self._columns = {}  # rebuilt lazily
        return number

    def column(self, name: str) -> npt.NDArray[Any]:
        """One parameter across every profile."""
        column = self._columns.get(name)
        if column is None:
            column = np.array([getattr(p, name) for p in self.profiles])
            self._columns[name] = column
        return column


@dataclass(slots=True)
class Round:
    """At most one reading per device, with the devices' parameters and the output list."""

    devs: npt.NDArray[np.intp]
    ts: I64
    values: F64  # (quantities, batch rows); see `rows`
    kinds: npt.NDArray[np.uint8]
    profiles: npt.NDArray[np.uint16]
    table: ParamTable
    device_ids: Sequence[str]
    now: int
    events: list[AlertEvent]
    s: Fields  # these devices' state records (a copy, written back after the round)
    rows: Intp | slice | None = None  # which columns of `values` this round takes
    # Rows before `split` are one kind (fire detectors), the rest another: families that
    # apply to every kind run once over the whole round, the others on `part`s.
    split: int | None = None
    _uniform: int | None = field(default=None)
    _pair: tuple[int, int] | None = field(default=None)  # each side's profile, if uniform
    # Fire detectors: the haze level of each row's region (rules/haze.py); None while
    # every region is clear.
    haze_level: F64 | None = None
    # False when no detector's base can have reached its drift limit (the engine knows
    # from the haze timer): the health family then skips that test.
    drift_possible: bool = True
    # Devices whose sensor reported a fault -> the report's event time (the engine's own
    # dict: health clears entries); None when there are none, as usual.
    reported: dict[int, int] | None = None
    _cache: dict[str, Any] = field(default_factory=dict)
    _at: dict[str, Any] = field(default_factory=dict)  # uniform parameters as Python numbers

    def __post_init__(self) -> None:
        # Most parts of a round use one profile (each side of the split usually does): then
        # thresholds stay scalars, or two values laid out by side. The engine may know the
        # sides' profiles already (`_pair`): then nothing is scanned.
        if self._uniform is not None:
            return
        if self._pair is not None:
            if self._pair[0] == self._pair[1]:
                self._uniform = self._pair[0]
            return
        p = self.profiles
        if not len(p):
            return
        first = int(p[0])
        k = self.split
        if k is None or not 0 < k < len(p):
            if (p == first).all():
                self._uniform = first
            return
        second = int(p[k])
        if (p[:k] == first).all() and (p[k:] == second).all():
            if first == second:
                self._uniform = first
            else:
                self._pair = (first, second)

    def __len__(self) -> int:
        return int(self.devs.shape[0])

    def part(self, lo: int, hi: int) -> Round:
        """Rows lo..hi of this round (views: writes reach this round's records)."""
        if self.rows is None:
            rows: Intp | slice = slice(lo, hi)
        elif isinstance(self.rows, slice):
            start = self.rows.start or 0
            rows = slice(start + lo, start + hi)
        else:
            rows = self.rows[lo:hi]
        uniform = self._uniform
        if uniform is None and self._pair is not None and self.split is not None:
            # A part on one side of the split has that side's profile.
            if hi <= self.split:
                uniform = self._pair[0]
            elif lo >= self.split:
                uniform = self._pair[1]
        return Round(
            self.devs[lo:hi],
            self.ts[lo:hi],
            self.values,
            self.kinds[lo:hi],
            self.profiles[lo:hi],
            self.table,
            self.device_ids,
            self.now,
            self.events,
            Fields(self.s.rec[lo:hi]),
            rows,
            _uniform=uniform,
        )

    def col(self, name: str) -> F64:
        """One quantity for these rows (NaN where absent)."""
        key = "q:" + name
        column: F64 | None = self._cache.get(key)
        if column is None:
            # Gather lazily: a family touches only the quantities it needs.
            whole = self.values[Q_INDEX[name]]
            column = whole if self.rows is None else whole[self.rows]
            self._cache[key] = column
        return column

    def col_at(self, name: str, rows: Intp) -> F64:
        """One quantity at some rows of this round, without gathering the whole column (for
        a quantity read only where another test passed)."""
        column = self._cache.get("q:" + name)
        if column is not None:
            picked: F64 = column[rows]
            return picked
        whole = self.values[Q_INDEX[name]]
        if self.rows is None:
            return whole[rows]  # type: ignore[no-any-return]
        if isinstance(self.rows, slice):
            return whole[(self.rows.start or 0) + rows]  # type: ignore[no-any-return]
        return whole[self.rows[rows]]  # type: ignore[no-any-return]

    def p(self, name: str, rows: Intp | None = None) -> Any:
        """A parameter for these rows (or the given ones among them): a scalar if they share
        a profile, else an array."""
        cached = self._cache.get(name)
        if cached is None:
            column = self.table.column(name)
            if self._uniform is not None:
                cached = column[self._uniform]
            elif self._pair is not None and self.split is not None:
                first, second = column[self._pair[0]], column[self._pair[1]]
                if first == second:
                    cached = first
                else:
                    cached = np.empty(len(self.profiles), column.dtype)
                    cached[: self.split] = first
                    cached[self.split :] = second
            else:
                cached = column[self.profiles]
            self._cache[name] = cached
        if rows is not None and type(cached) is np.ndarray:
            return cached[rows]
        return cached

    def at(self, name: str, row: int) -> Any:
        """A parameter for one row (for messages), as a plain Python number."""
        found = self._at.get(name)
        if found is not None:
            return found
        value = self.p(name)
        if type(value) is np.ndarray:
            return value[row].item()
        found = self._at[name] = value.item()
        return found

    def emit(
        self,
        rows: Intp | list[int],
        action: Action | Callable[[int], Action] | list[Action],
        slot: str,
        kind: str | Callable[[int], str] | list[str],
        category: str,
        severity: Severity | Callable[[int], Severity] | list[Severity],
        reason: Callable[[int], str] | list[str],
        values: tuple[str, ...] = (),
        ts: I64 | None = None,
    ) -> None:
        """Append one event per row (rows are few: only transitions reach here). Action,
        kind, severity and reason are each one value, a function of the row, or a list with
        one entry per row; `values` names the quantities to show, where the row carried them."""
        rows = np.asarray(rows, np.intp)
        if not len(rows):
            return
        # Plain Python values for these rows at once, then one pass that builds the events:
        # indexing numpy arrays one element at a time costs more than building the event.
        at = rows.tolist()
        devices = self.devs[rows].tolist()
        stamps = (self.ts if ts is None else ts)[rows].tolist()
        actions = _per_row(action, at)
        kinds = _per_row(kind, at)
        severities = _per_row(severity, at)
        reasons = _per_row(reason, at)
        shown: list[dict[str, float]] = [{} for _ in at]
        for name in values:
            # Column by column: a comprehension per event costs a function call each.
            for carried, v in zip(shown, self.col(name)[rows].tolist(), strict=True):
                if v == v:  # False for NaN: a quantity the row did not carry
                    carried[name] = v
        ids = self.device_ids
        self.events.extend(
            [
                AlertEvent(a, slot, k, category, ids[d], d, t, sev, why, carried)
                for a, k, d, t, sev, why, carried in zip(
                    actions, kinds, devices, stamps, severities, reasons, shown, strict=True
                )
            ]
        )


def _per_row(given: Any, rows: list[int]) -> list[Any]:
    """One value per row from a list (as is), a function of the row, or a single value."""
    if type(given) is list:
        return given
    if callable(given):
        return [given(row) for row in rows]
    return [given] * len(rows)


def transition(before: int, after: int) -> Action:
    """The action of a level change: from 0 a raise, to 0 a clear, else an update."""
    return Action.raise_ if before == 0 else Action.clear if after == 0 else Action.update


def fmt(value: float) -> str:
    """A value for a reason string."""
    return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"


def quantities(r: Round, row: int, *names: str) -> dict[str, float]:
    """The named quantities a row carried."""
    out = {}
    for name in names:
        value = float(r.col(name)[row])
        if value == value:
            out[name] = value
    return out
