"""Replay a recorded trace (CSV with a time column) as one device's readings.

Playback is real time (`speed=1`) or accelerated; either way event time is preserved: the
readings' `ts` are spaced as in the trace, and back-dated so that the last one is stamped
about when it is sent (ingest refuses readings from the future). The clock and the sleep
are injected, so tests run a 20-minute trace in no time.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from contract.readings import QUANTITIES as READING_QUANTITIES
from simulators.errors import SimulatorError

# Quantities a trace column may be mapped to: the reading payload's (DESIGN.md).
QUANTITIES = frozenset(READING_QUANTITIES)


class TraceError(SimulatorError):
    """A trace file or column mapping that cannot be replayed."""


@dataclass(frozen=True)
class Trace:
    """Rows of (seconds, {quantity: value}), in time order."""

    times_s: tuple[float, ...]
    values: tuple[dict[str, float], ...]
    source: str = "trace"

    @property
    def span_s(self) -> float:
        """Seconds from the first row to the last."""
        return self.times_s[-1] - self.times_s[0] if self.times_s else 0.0

    def every(self, step_s: float) -> Trace:
        """Keep about one row per `step_s` seconds (a device reporting less often)."""
        if step_s <= 0:
            return self
        times: list[float] = []
        values: list[dict[str, float]] = []
        next_t = -math.inf
        for t, v in zip(self.times_s, self.values, strict=True):
            if t >= next_t:
                times.append(t)
                values.append(v)
                next_t = t + step_s - 1e-9
        return Trace(tuple(times), tuple(values), self.source)


def load_trace(
    path: str | Path,
    columns: Mapping[str, str],
    time_column: str = "Time",
    start_s: float | None = None,
) -> Trace:
    """Read a CSV trace; `columns` maps quantity -> CSV column (e.g. temp_c -> a thermocouple)."""
    unknown = set(columns) - QUANTITIES
    if unknown:
        raise TraceError(f"not reading quantities: {sorted(unknown)}; use {sorted(QUANTITIES)}")
    if not columns:
        raise TraceError("map at least one quantity to a column (e.g. temp_c=...)")
    file = Path(path)
    try:
        handle = file.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise TraceError(f"{file}: cannot read: {exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for needed in (time_column, *columns.values()):
            if needed not in header:
                raise TraceError(
                    f"{file}: no column {needed!r} (columns: {', '.join(header[:8])}...)"
                )
        times: list[float] = []
        values: list[dict[str, float]] = []
        for line, row in enumerate(reader, start=2):
            try:
                t = float(row[time_column])
            except (TypeError, ValueError):
                raise TraceError(f"{file}:{line}: {time_column} is not a number") from None
            if start_s is not None and t < start_s:
                continue
            if times and t <= times[-1]:
                raise TraceError(f"{file}:{line}: {time_column} does not increase")
            reading: dict[str, float] = {}
            for quantity, column in columns.items():
                text = (row.get(column) or "").strip()
                if not text:
                    continue  # a gap in the recording: the reading simply lacks it
                try:
                    value = float(text)
                except ValueError:
                    raise TraceError(f"{file}:{line}: {column} is not a number") from None
                if math.isfinite(value):
                    reading[quantity] = round(value, 3)
            if reading:
                times.append(t)
                values.append(reading)
    if not times:
        raise TraceError(f"{file}: no rows to replay")
    return Trace(tuple(times), tuple(values), str(file))


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One reading to send: at wall time `send_at` (clock seconds), stamped `ts_ms`."""

    send_at: float
    ts_ms: int
    payload: dict[str, Any]


def replay_plan(
    trace: Trace, start: float, epoch_now: float, speed: float = 1.0
) -> Iterator[ReplayItem]:
    """When to send each row and its event time; `start` is the clock, `epoch_now` wall time."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    t0 = trace.times_s[0]
    span = trace.span_s
    # Back-date the event times by what acceleration saves, so the last reading is stamped
    # when it is sent: ts never runs ahead of the wall clock, and spacing is the trace's.
    ts0 = epoch_now - span + span / speed
    for seq, (t, values) in enumerate(zip(trace.times_s, trace.values, strict=True)):
        offset = t - t0
        ts_ms = round((ts0 + offset) * 1000)
        yield ReplayItem(start + offset / speed, ts_ms, {"ts": ts_ms, "seq": seq, **values})


def replay(
    trace: Trace,
    send: Callable[[bytes], None],
    *,
    speed: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], Any] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Send every row of the trace as a reading at its (accelerated) time; returns the count."""
    sent = 0
    for item in replay_plan(trace, clock(), wall(), speed):
        delay = item.send_at - clock()
        if delay > 0:
            sleep(delay)
        if stop():
            break
        send(orjson.dumps(item.payload))
        sent += 1
    return sent


def parse_columns(specs: list[str]) -> dict[str, str]:
    """`quantity=CSV column` options into a mapping."""
    columns: dict[str, str] = {}
    for spec in specs:
        quantity, sep, column = spec.partition("=")
        if not sep or not column:
            raise TraceError(f"expected quantity=column, got {spec!r}")
        columns[quantity.strip()] = column.strip()
    return columns
