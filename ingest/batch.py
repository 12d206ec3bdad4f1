"""ReadingBatch: the columnar hand-off from ingest to rules (numpy columns, no bytes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from contract.readings import Q_INDEX

__all__ = ["ReadingBatch"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """A micro-batch of validated readings, one row per reading, in arrival order."""

    device: I32  # dense device index (see devices.directory)
    kind: U8  # KIND_CODES of the device
    ts_ms: I64  # event time, ms since the Unix epoch (UTC)
    seq: I64  # device sequence number, -1 when absent
    values: F64  # shape (len(QUANTITIES), n); NaN = not reported
    device_ids: Sequence[str]  # index -> device id (shared, not copied)
    arrived_ms: int = 0  # when the batch's first reading reached ingest (for latency metrics)
    # Row -> what the sensor reports is wrong with it (a device profile's status string,
    # "distance: No Sensor"): device.fault, and stored with the reading. Such a row may
    # carry no quantity. Usually empty.
    faults: Mapping[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.device.shape[0])

    def col(self, name: str) -> F64:
        """One quantity's column (a view; NaN where the reading did not carry it)."""
        column: F64 = self.values[Q_INDEX[name]]
        return column
