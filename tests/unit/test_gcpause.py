"""Garbage-collector pauses are measured, and start-up objects can be frozen."""

from __future__ import annotations

import gc

from sigap import gcpause


def _count(generation: int) -> float:
    for metric in gcpause.PAUSES.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["generation"] == str(generation):
                return sample.value
    return 0.0


def test_every_collection_is_timed_once() -> None:
    gcpause.watch()
    gcpause.watch()  # idempotent: one callback
    before = _count(2)
    gc.collect()
    assert _count(2) == before + 1


def test_freeze_takes_survivors_out_of_later_collections() -> None:
    keep = [[i] for i in range(10_000)]  # long-lived containers
    try:
        frozen = gcpause.freeze()
        # Frozen objects can still die (their count then drops): other threads of the test
        # process, aiosqlite's say, release theirs at any time.
        assert frozen >= len(keep) and len(keep) <= gc.get_freeze_count() <= frozen
        walked = {id(o) for o in gc.get_objects(2)}  # what a full collection would walk
        assert not any(id(x) in walked for x in keep)
    finally:
        gc.unfreeze()
