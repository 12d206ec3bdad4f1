"""When each device last reported: exact in memory, written to SQL now and then.

Technicians look for a device's first reading, and the API shows when a device was last
heard from. Keeping that in SQL for every reading cost a quarter of ingest's CPU at 1M
devices reporting once a minute (16.7k row updates a second; see BENCHMARKS.md, soak).
So the exact time lives in a numpy array by directory index, which the API reads, and SQL
gets a device's time when it is first seen and then at most every `write_every_ms`
(and everything at shutdown), enough for other processes and for after a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.timeutil import from_ms
from devices.directory import DeviceDirectory

I64 = npt.NDArray[np.int64]


class LastSeen:
    """Arrival time of each device's latest reading, and what SQL holds of it."""

    def __init__(self, directory: DeviceDirectory, write_every_ms: int = 300_000) -> None:
        self._directory = directory
        self.write_every_ms = write_every_ms
        self._seen: I64 = np.zeros(max(1024, len(directory.ids)), np.int64)  # 0: never
        self._written: I64 = np.zeros_like(self._seen)

    def record(self, device: npt.NDArray[Any], arrived_ms: int) -> None:
        """These devices (directory indices) reported at `arrived_ms`."""
        if len(device) == 0:
            return
        self._grow(int(device.max()) + 1)
        self._seen[device] = arrived_ms

    def get(self, device_id: str) -> datetime | None:
        """When the device last reported, as far as this process knows."""
        info = self._directory.get(device_id)
        if info is None or info.index >= len(self._seen) or not self._seen[info.index]:
            return None
        return from_ms(int(self._seen[info.index]))

    def due(self, *, everything: bool = False) -> tuple[dict[str, datetime], I64, I64]:
        """What to write to SQL now: devices first seen since the last write, and those
        whose stored time is `write_every_ms` old (or, `everything`, all that changed).

        Returns the id -> time mapping, and the indices and times to pass to `written`.
        """
        seen, written = self._seen, self._written
        changed = seen > written
        if not everything:
            changed &= (written == 0) | (seen - written >= self.write_every_ms)
        index = np.flatnonzero(changed)
        times = seen[index]
        ids = self._directory.ids
        return (
            {ids[i]: from_ms(t) for i, t in zip(index.tolist(), times.tolist(), strict=True)},
            index,
            times,
        )

    def written(self, index: I64, times: I64) -> None:
        """SQL now holds these times (from `due`)."""
        self._written[index] = times

    def _grow(self, size: int) -> None:
        if size <= len(self._seen):
            return
        grown = max(size, 2 * len(self._seen))
        self._seen = np.concatenate([self._seen, np.zeros(grown - len(self._seen), np.int64)])
        self._written = np.concatenate(
            [self._written, np.zeros(grown - len(self._written), np.int64)]
        )
