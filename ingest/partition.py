"""Several ingest workers on one broker: who owns which device's rule state.

Every worker takes a share of the device and gateway topics through an MQTT shared
subscription (`$share/{group}/...`), so the broker spreads the messages, and the receive,
decode and InfluxDB-write work, over the workers. The broker does not know which device
a message is about, though, and rule state (rate-of-rise rings, alarm verification, bin
fill history) must live in exactly one place. So each device has one owner worker; a
worker evaluates the readings it owns itself and forwards the others, already decoded
and validated, to their owner on `sigap/internal/ingest/{owner}` (QoS 1, the owner's
persistent session). The receiving worker acknowledges the original message only once
the forward has reached the broker, so nothing is lost when a worker dies in between.

Ownership is a pure function of the registry (the same on every worker): fire detectors
that may confirm one another must share an owner, so detectors are placed by zone, or by
a map cell when they have none; bins and detectors without a location by their id.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from contract.readings import QUANTITIES
from devices.directory import DeviceDirectory, DeviceInfo
from ingest.batch import ReadingBatch

TOPIC_PREFIX = "sigap/internal/ingest/"
WIRE_VERSION = 1


class ForwardError(ValueError):
    """A message on a partition topic that is not a forwarded batch Sigap can read."""


@dataclass(frozen=True, slots=True)
class Partition:
    """This worker's place among `workers` ingest workers."""

    workers: int
    index: int
    group: str = "sigap-ingest"
    # Map cell for fire detectors without a zone, in degrees (0.02 deg ~ 2.2 km here):
    # large against the confirmation distance (100 m), so few neighbours straddle a border.
    cell_deg: float = 0.02

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if not 0 <= self.index < self.workers:
            raise ValueError(f"worker index must be in 0..{self.workers - 1}, got {self.index}")
        if not self.group or any(c in self.group for c in "/+#"):
            raise ValueError(f"share group must be a plain topic level, got {self.group!r}")

    @property
    def topic(self) -> str:
        """The topic this worker receives its forwarded readings on."""
        return topic_of(self.index)

    def shared(self, topic: str) -> str:
        """`topic` as a shared subscription of this worker group."""
        return f"$share/{self.group}/{topic}"

    def owner(self, info: DeviceInfo) -> int:
        """The worker that holds this device's rule state."""
        return zlib.crc32(self.key(info).encode()) % self.workers

    def key(self, info: DeviceInfo) -> str:
        """What decides the owner: detectors that may confirm each other share a key."""
        if info.kind == "fire":
            if info.zone:
                return f"zone:{info.zone}"
            if math.isfinite(info.lat) and math.isfinite(info.lon):
                cell = self.cell_deg
                return f"cell:{math.floor(info.lat / cell)}:{math.floor(info.lon / cell)}"
        return f"device:{info.id}"


def topic_of(index: int) -> str:
    """The partition topic of worker `index`."""
    return f"{TOPIC_PREFIX}{index}"


class Owners:
    """Each registered device's owner worker, by directory index, kept in step with it."""

    def __init__(self, partition: Partition, directory: DeviceDirectory) -> None:
        self.partition = partition
        self._owner = np.zeros(max(1024, len(directory.ids)), np.int16)
        directory.listen(self.learn)
        for device_id in directory.ids:
            info = directory.get(device_id)
            if info is not None:
                self.learn(info)

    def learn(self, info: DeviceInfo) -> None:
        """Record (or move) a device's owner."""
        if info.index >= len(self._owner):
            grown = np.zeros(max(info.index + 1, 2 * len(self._owner)), np.int16)
            grown[: len(self._owner)] = self._owner
            self._owner = grown
        self._owner[info.index] = self.partition.owner(info)

    def owns(self, info: DeviceInfo) -> bool:
        """True when this worker holds the device's rule state."""
        return bool(self._owner[info.index] == self.partition.index)

    def split(self, batch: ReadingBatch) -> tuple[ReadingBatch | None, dict[int, ReadingBatch]]:
        """The batch's rows this worker owns, and the others by owner."""
        owner = self._owner[batch.device]
        mine = owner == self.partition.index
        if mine.all():
            return batch, {}
        local = take(batch, np.flatnonzero(mine)) if mine.any() else None
        others = {
            int(k): take(batch, np.flatnonzero(owner == k))
            for k in np.unique(owner[~mine]).tolist()
        }
        return local, others


def take(batch: ReadingBatch, rows: npt.NDArray[np.intp]) -> ReadingBatch:
    """The rows of a batch, in their order, as a batch of their own."""
    return ReadingBatch(
        batch.device[rows],
        batch.kind[rows],
        batch.ts_ms[rows],
        batch.seq[rows],
        batch.values[:, rows],
        batch.device_ids,
        arrived_ms=batch.arrived_ms,
        faults=faults_of(batch.faults, rows),
    )


def faults_of(faults: Mapping[int, str], rows: npt.NDArray[np.intp]) -> dict[int, str]:
    """The faults of these rows (row -> what the sensor reports), renumbered as rows of a
    batch of just these rows."""
    if not faults:
        return {}
    return {new: faults[old] for new, old in enumerate(rows.tolist()) if old in faults}


def encode(batch: ReadingBatch, partition: Partition) -> bytes:
    """A batch as a forwarded message: device ids (indices differ between workers),
    times, sequence numbers and the quantities any row carries (NaN as null)."""
    ids = batch.device_ids
    values = batch.values
    carried = ~np.isnan(values).all(axis=1)
    message = {
        "v": WIRE_VERSION,
        "workers": partition.workers,
        "from": partition.index,
        "arrived_ms": batch.arrived_ms,
        "device_id": [ids[i] for i in batch.device.tolist()],
        "ts_ms": batch.ts_ms.tolist(),
        "seq": batch.seq.tolist(),
        # orjson writes NaN as null, which np.array(..., float64) reads back as NaN.
        "q": {QUANTITIES[i]: values[i].tolist() for i in np.flatnonzero(carried).tolist()},
    }
    if batch.faults:  # row (as a string: a JSON key) -> what the sensor reports
        message["faults"] = {str(row): text for row, text in batch.faults.items()}
    return orjson.dumps(message)


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A decoded forwarded batch, before its device ids are mapped to this worker's indices."""

    workers: int
    sender: int
    arrived_ms: int
    device_ids: list[str]
    ts_ms: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    faults: dict[int, str] = field(default_factory=dict)  # row -> what the sensor reports


def decode(payload: bytes) -> Forwarded:
    """Parse a forwarded batch; ForwardError says what is wrong with it."""
    try:
        message: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ForwardError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("v") != WIRE_VERSION:
        raise ForwardError(f"not a version {WIRE_VERSION} forwarded batch")
    try:
        ids = message["device_id"]
        n = len(ids)
        if not all(isinstance(i, str) for i in ids):
            raise ForwardError("device ids must be strings")
        ts_ms = np.array(message["ts_ms"], np.int64)
        seq = np.array(message["seq"], np.int64)
        values = np.full((len(QUANTITIES), n), np.nan)
        for name, column in message["q"].items():
            values[QUANTITIES.index(name)] = np.array(column, np.float64)
        if ts_ms.shape != (n,) or seq.shape != (n,):
            raise ForwardError("columns of different lengths")
        faults = {int(row): str(text) for row, text in message.get("faults", {}).items()}
        if not all(0 <= row < n for row in faults):
            raise ForwardError("a fault names a row the batch does not have")
        return Forwarded(
            int(message["workers"]),
            int(message["from"]),
            int(message["arrived_ms"]),
            ids,
            ts_ms,
            seq,
            values,
            faults,
        )
    except ForwardError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ForwardError(f"malformed forwarded batch: {type(exc).__name__}: {exc}") from None
