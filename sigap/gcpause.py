"""Python's garbage-collector pauses, measured, and kept short.

A full (generation 2) collection walks every container object the process holds, and
while it runs nothing else does: no message is read, no alert committed. Sigap holds
the whole registry in memory (pydantic models, dicts), so with a large fleet a full
collection is a stall every alert waits behind. Objects made at start-up live as long as
the process: `freeze()` moves them out of the collector's sight, so later collections
only walk what was allocated since.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

PAUSES = Histogram(
    "sigap_gc_pause_seconds",
    "Garbage-collector pauses, by generation collected",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_BY_GENERATION = [PAUSES.labels(str(g)) for g in range(3)]
_started = 0.0


def _callback(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
    else:
        _BY_GENERATION[info["generation"]].observe(time.perf_counter() - _started)


def watch() -> None:
    """Record every collection's pause in `sigap_gc_pause_seconds` (idempotent)."""
    if _callback not in gc.callbacks:
        gc.callbacks.append(_callback)


def freeze() -> int:
    """Collect once, then exempt every surviving object from later collections; returns
    how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
