"""Per-device state arrays, indexed by the directory's dense device index."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NEVER = np.iinfo(np.int64).min


class DeviceState:
    """Growable per-device arrays: last evaluated event time and one latch per alert kind."""

    def __init__(self, kinds: tuple[str, ...], capacity: int = 1024) -> None:
        self.kinds = kinds
        self.last_ts: npt.NDArray[np.int64] = np.full(capacity, NEVER, np.int64)
        self.active: dict[str, npt.NDArray[np.bool_]] = {
            kind: np.zeros(capacity, bool) for kind in kinds
        }

    @property
    def capacity(self) -> int:
        """How many devices the arrays hold."""
        return int(self.last_ts.shape[0])

    def ensure(self, devices: int) -> None:
        """Grow (doubling) so that device indices below `devices` fit."""
        if devices <= self.capacity:
            return
        size = max(devices, self.capacity * 2)
        grow = size - self.capacity
        self.last_ts = np.concatenate([self.last_ts, np.full(grow, NEVER, np.int64)])
        for kind, array in self.active.items():
            self.active[kind] = np.concatenate([array, np.zeros(grow, bool)])

    def nbytes(self) -> int:
        """Memory held by the state arrays."""
        return int(self.last_ts.nbytes + sum(a.nbytes for a in self.active.values()))
