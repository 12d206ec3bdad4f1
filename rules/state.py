"""Per-device state and attribute arrays, indexed by the directory's dense device index."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

NEVER = int(np.iinfo(np.int64).min)
RING = 4  # heat samples kept per device for the rate of rise

# name -> (dtype, fill value, trailing shape); every array has one row per device.
_LAYOUT: dict[str, tuple[Any, Any, tuple[int, ...]]] = {
    # heat ring, newest sample first (slot 0)
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
    "fault": (np.bool_, False, ()),
    "fault_good": (np.uint8, 0, ()),
    # Read or written for every reading, so in the records, where they cost no gather or
    # scatter of their own: device.offline (a reading clears it), the event time of the
    # latest reading evaluated (the late check) and when it was evaluated (the offline
    # sweep reads these for every device, strided, every 30 s).
    "offline": (np.bool_, False, ()),
    "last_ts": (np.int64, NEVER, ()),
    "last_arrival": (np.int64, NEVER, ()),
    "stuck_value": (np.float64, np.nan, ()),
    "stuck_since": (np.int64, NEVER, ()),
    "stuck_count": (np.uint16, 0, ()),
    # haze (docs/rules.md "Haze"), learnt on a timer and read each round: a fire detector's
    # share of its region's haze (float16 is plenty), its clear-air base (float32: dust
    # adds less per check than float16 can hold), and the newest smoke of a detector or
    # PM2.5 of an air station (one field: a device is one or the other)
    "haze_ratio": (np.float16, 1.0, ()),
    "smoke_base": (np.float32, 0.0, ()),
    "last_haze": (np.float16, np.nan, ()),
    # attributes (from the registry)
    "profile": (np.uint16, 0, ()),
    "depth": (np.float64, np.nan, ()),
}


# Kept as plain arrays beside the records: read for every row before a round's records are
# gathered (the late check, the kind split), so they should be small and contiguous.
_SEPARATE: dict[str, tuple[Any, Any]] = {
    "max_ts": (np.int64, NEVER),
    # KIND_CODES (0: not registered). Read for every row to split a round by kind, before
    # the records are gathered: from 1 byte a device that stay in cache, not from a line
    # of each record.
    "kind": (np.uint8, 0),
    # The offline sweep compares every device's allowance: contiguous, not strided records.
    "offline_after_ms": (np.int64, 0),
    # Read only by fire confirmation, for a few devices and after the round: kept out of the
    # records that every round gathers and scatters.
    "zone": (np.int32, -1),
    "lat": (np.float64, np.nan),
    "lon": (np.float64, np.nan),
    # The haze region (rules/haze.py), read per fire round and by the haze timer.
    "region": (np.int16, -1),
}

# Widest fields first and an itemsize that is a multiple of 8, so that every field of every
# record is aligned without padding: numpy's loops run faster on aligned data.
STATE_DTYPE = np.dtype(
    sorted(
        ((name, dtype, shape) for name, (dtype, _, shape) in _LAYOUT.items()),
        key=lambda field: -np.dtype(field[1]).itemsize,
    ),
    align=True,
)
_RAW = np.dtype((np.void, STATE_DTYPE.itemsize))


def _blank(size: int) -> npt.NDArray[np.void]:
    rec = np.empty(size, STATE_DTYPE)
    for name, (_, fill, _) in _LAYOUT.items():
        rec[name] = fill
    return rec


class Fields:
    """Attribute access to the fields of a structured record array (views, writable)."""

    __slots__ = ("rec",)

    def __init__(self, rec: npt.NDArray[np.void]) -> None:
        self.rec = rec

    def __getattr__(self, name: str) -> Any:
        # Reached only for names that are not fields (the fields are properties, below):
        # numpy says which name is unknown.
        return self.rec[name]


def _field(name: str) -> property:
    def get(self: Fields) -> Any:
        return self.rec[name]

    return property(get, doc=f"The {name} field of the records (a view).")


# One property per field: a lookup that fails before reaching __getattr__ builds an
# AttributeError first, and the families read fields thousands of times a second.
for _name in _LAYOUT:
    setattr(Fields, _name, _field(_name))


class EngineState(Fields):
    """Every device's state and attributes as one record per device.

    One record per device (rather than one array per field) makes a round cost one gather
    and one scatter of whole records, instead of dozens of scattered accesses per row.
    """

    __slots__ = (
        "capacity",
        "kind",
        "lat",
        "lon",
        "max_ts",
        "offline_after_ms",
        "region",
        "zone",
    )

    max_ts: npt.NDArray[np.int64]
    kind: npt.NDArray[np.uint8]
    offline_after_ms: npt.NDArray[np.int64]
    zone: npt.NDArray[np.int32]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    region: npt.NDArray[np.int16]

    def __init__(self, capacity: int = 1024) -> None:
        super().__init__(_blank(capacity))
        self.capacity = capacity
        for name, (dtype, fill) in _SEPARATE.items():
            setattr(self, name, np.full(capacity, fill, dtype))

    def ensure(self, devices: int) -> None:
        """Grow (doubling) so that device indices below `devices` fit."""
        if devices <= self.capacity:
            return
        size = max(devices, self.capacity * 2)
        grown = _blank(size)
        grown[: self.capacity] = self.rec
        self.rec = grown
        for name, (dtype, fill) in _SEPARATE.items():
            array = np.full(size, fill, dtype)
            array[: self.capacity] = getattr(self, name)
            setattr(self, name, array)
        self.capacity = size

    def gather(self, devs: npt.NDArray[np.intp]) -> Fields:
        """A copy of these devices' records, to work on and then `scatter` back."""
        # Copy whole records as opaque bytes: numpy's structured-dtype copy is >10x slower.
        raw = np.take(self.rec.view(_RAW), devs)
        return Fields(raw.view(STATE_DTYPE))

    def scatter(self, devs: npt.NDArray[np.intp], local: Fields) -> None:
        """Write a round's records back."""
        # np.put is faster than fancy assignment for these opaque records.
        np.put(self.rec.view(_RAW), devs, local.rec.view(_RAW))

    def nbytes(self) -> int:
        """Memory held by the records and the plain arrays."""
        return int(self.rec.nbytes) + sum(int(getattr(self, n).nbytes) for n in _SEPARATE)

    @staticmethod
    def bytes_per_device() -> int:
        """Bytes of state and attributes per device."""
        separate = sum(int(np.dtype(dtype).itemsize) for dtype, _ in _SEPARATE.values())
        return int(STATE_DTYPE.itemsize) + separate
