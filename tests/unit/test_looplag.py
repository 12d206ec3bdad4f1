"""A blocked event loop is measured, and the log says where it was blocked."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from sigap import looplag


def _lag_count() -> float:
    for metric in looplag.LAG.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    return 0.0


def hold_the_loop(seconds: float) -> None:
    """What a long synchronous call does to every other task."""
    time.sleep(seconds)


async def test_a_blocked_loop_is_logged_with_its_stack(caplog: pytest.LogCaptureFixture) -> None:
    before = _lag_count()
    caplog.set_level(logging.WARNING, logger="sigap.looplag")
    watcher = asyncio.create_task(looplag.watch(period=0.01, warn_s=0.1))
    await asyncio.sleep(0.05)  # let it take a few samples
    hold_the_loop(0.4)
    await asyncio.sleep(0.05)
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    assert _lag_count() > before
    messages = [r.getMessage() for r in caplog.records]
    assert any("blocked for" in m for m in messages), messages
    (where,) = [m for m in messages if "it is at" in m]
    assert "hold_the_loop" in where
