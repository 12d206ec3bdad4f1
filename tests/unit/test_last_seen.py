"""Last-seen times: exact in memory, written to SQL when first seen and then now and then."""

from __future__ import annotations

import numpy as np

from contract.timeutil import from_ms
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from ingest.last_seen import LastSeen

T0 = 1_790_000_000_000
MINUTE = 60_000


def directory_of(count: int) -> DeviceDirectory:
    directory = DeviceDirectory()
    for i in range(count):
        directory.upsert(
            DeviceCreate.model_validate({"id": f"d{i}", "kind": "fire", "lat": -2.5, "lon": 113})
        )
    return directory


def test_the_latest_arrival_is_known_at_once_and_written_when_first_seen() -> None:
    directory = directory_of(3)
    seen = LastSeen(directory, write_every_ms=5 * MINUTE)
    assert seen.get("d0") is None and seen.get("nobody") is None
    seen.record(np.array([0, 1, 0], np.int32), T0)
    assert seen.get("d0") == from_ms(T0) and seen.get("d2") is None
    due, index, times = seen.due()
    assert due == {"d0": from_ms(T0), "d1": from_ms(T0)}
    seen.written(index, times)
    assert seen.due()[0] == {}  # nothing new


def test_a_device_reporting_every_minute_is_written_every_five() -> None:
    directory = directory_of(2)
    seen = LastSeen(directory, write_every_ms=5 * MINUTE)
    writes: list[list[str]] = []
    for minute in range(12):
        seen.record(np.array([0], np.int32), T0 + minute * MINUTE)
        due, index, times = seen.due()
        writes.append(sorted(due))
        seen.written(index, times)
    assert [m for m, w in enumerate(writes) if w] == [0, 5, 10]
    assert seen.get("d0") == from_ms(T0 + 11 * MINUTE)  # the API still sees every minute
    # At shutdown, everything newer than SQL goes out.
    due, _, _ = seen.due(everything=True)
    assert due == {"d0": from_ms(T0 + 11 * MINUTE)}


def test_a_failed_write_is_due_again_and_the_table_grows_with_the_registry() -> None:
    directory = directory_of(1)
    seen = LastSeen(directory)
    seen.record(np.array([0], np.int32), T0)
    assert seen.due()[0]  # not marked written: the SQL write failed
    assert seen.due()[0] == {"d0": from_ms(T0)}
    for i in range(1, 3000):  # registered since: the arrays grow with the directory
        directory.upsert(
            DeviceCreate.model_validate({"id": f"d{i}", "kind": "fire", "lat": -2.5, "lon": 113})
        )
    seen.record(np.array([2999], np.int32), T0 + 1)
    assert seen.get("d2999") == from_ms(T0 + 1)
    assert set(seen.due()[0]) == {"d0", "d2999"}
