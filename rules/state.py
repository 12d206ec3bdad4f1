"""Per-device state and attribute arrays, indexed by the directory's dense device index."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

NEVER = int(np.iinfo(np.int64).min)
RING = 4  # heat samples kept per device for the rate of rise

# name -> (dtype, fill value, trailing shape); every array has one row per device.
_LAYOUT: dict[str, tuple[Any, Any, tuple[int, ...]]] = {
    # admission
    "last_ts": (np.int64, NEVER, ()),
    "max_ts": (np.int64, NEVER, ()),
    "last_arrival": (np.int64, NEVER, ()),
    # heat ring, newest sample first
    "ring_ts": (np.int64, NEVER, (RING,)),
    "ring_temp": (np.float64, np.nan, (RING,)),
    # fire
    "fire_level": (np.uint8, 0, ()),
    "first_alarm": (np.int64, NEVER, ()),
    "last_alarm": (np.int64, NEVER, ()),
    "fire_normal_since": (np.int64, NEVER, ()),
    # bin.fire
    "binfire": (np.bool_, False, ()),
    "binfire_normal_since": (np.int64, NEVER, ()),
    # bin.fill
    "fill_level": (np.uint8, 0, ()),
    "fill_pending": (np.uint8, 0, ()),
    "fill_count": (np.uint8, 0, ()),
    "ema": (np.float64, np.nan, ()),
    "ema_ts": (np.int64, NEVER, ()),
    "anchor_fill": (np.float64, np.nan, ()),
    "anchor_ts": (np.int64, NEVER, ()),
    "prior_rate": (np.float64, np.nan, ()),
    # bin.tilted, health
    "tilted": (np.bool_, False, ()),
    "battery_low": (np.bool_, False, ()),
    "offline": (np.bool_, False, ()),
    "fault": (np.bool_, False, ()),
    "fault_good": (np.uint8, 0, ()),
    "stuck_value": (np.float64, np.nan, ()),
    "stuck_since": (np.int64, NEVER, ()),
    "stuck_count": (np.uint16, 0, ()),
    # attributes (from the registry)
    "kind": (np.uint8, 0, ()),
    "profile": (np.uint16, 0, ()),
    "zone": (np.int32, -1, ()),
    "lat": (np.float64, np.nan, ()),
    "lon": (np.float64, np.nan, ()),
    "depth": (np.float64, np.nan, ()),
    "offline_after_ms": (np.int64, 0, ()),
}


class EngineState:
    """Growable arrays, one row per device: everything the rule families remember."""

    last_ts: npt.NDArray[np.int64]
    max_ts: npt.NDArray[np.int64]
    last_arrival: npt.NDArray[np.int64]
    ring_ts: npt.NDArray[np.int64]
    ring_temp: npt.NDArray[np.float64]
    fire_level: npt.NDArray[np.uint8]
    first_alarm: npt.NDArray[np.int64]
    last_alarm: npt.NDArray[np.int64]
    fire_normal_since: npt.NDArray[np.int64]
    binfire: npt.NDArray[np.bool_]
    binfire_normal_since: npt.NDArray[np.int64]
    fill_level: npt.NDArray[np.uint8]
    fill_pending: npt.NDArray[np.uint8]
    fill_count: npt.NDArray[np.uint8]
    ema: npt.NDArray[np.float64]
    ema_ts: npt.NDArray[np.int64]
    anchor_fill: npt.NDArray[np.float64]
    anchor_ts: npt.NDArray[np.int64]
    prior_rate: npt.NDArray[np.float64]
    tilted: npt.NDArray[np.bool_]
    battery_low: npt.NDArray[np.bool_]
    offline: npt.NDArray[np.bool_]
    fault: npt.NDArray[np.bool_]
    fault_good: npt.NDArray[np.uint8]
    stuck_value: npt.NDArray[np.float64]
    stuck_since: npt.NDArray[np.int64]
    stuck_count: npt.NDArray[np.uint16]
    kind: npt.NDArray[np.uint8]
    profile: npt.NDArray[np.uint16]
    zone: npt.NDArray[np.int32]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    depth: npt.NDArray[np.float64]
    offline_after_ms: npt.NDArray[np.int64]

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = 0
        for name, (dtype, fill, shape) in _LAYOUT.items():
            setattr(self, name, np.full((capacity, *shape), fill, dtype))
        self.capacity = capacity

    def ensure(self, devices: int) -> None:
        """Grow (doubling) so that device indices below `devices` fit."""
        if devices <= self.capacity:
            return
        size = max(devices, self.capacity * 2)
        for name, (dtype, fill, shape) in _LAYOUT.items():
            old = getattr(self, name)
            new = np.full((size, *shape), fill, dtype)
            new[: self.capacity] = old
            setattr(self, name, new)
        self.capacity = size

    def nbytes(self) -> int:
        """Memory held by all per-device arrays."""
        return int(sum(getattr(self, name).nbytes for name in _LAYOUT))

    @staticmethod
    def bytes_per_device() -> int:
        """Bytes of state and attributes per device."""
        return int(
            sum(
                np.dtype(dtype).itemsize * int(np.prod(shape or (1,)))
                for dtype, _, shape in _LAYOUT.values()
            )
        )
