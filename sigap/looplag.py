"""How late the event loop runs its timers, and where it was when it could not.

Ingest, rules, alert commits and the API share one asyncio loop. Anything that holds it
(a long synchronous call, a garbage-collector pass) delays every alert at once. A task
that asks to wake every `period` measures the lag; a watchdog thread that sees the loop
miss its wake-up by `warn_s` logs the loop thread's stack at that moment, once per stall,
so that the log says what held it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from types import FrameType

from prometheus_client import Histogram

log = logging.getLogger(__name__)

LAG = Histogram(
    "sigap_event_loop_lag_seconds",
    "How late the event loop woke a timer (a blocked loop delays every alert)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


async def watch(period: float = 0.05, warn_s: float = 0.25) -> None:
    """Measure the loop's lag forever, with a stack-dumping watchdog (cancel to stop)."""
    beat = [time.perf_counter()]
    stop = threading.Event()
    loop_thread = threading.get_ident()
    dog = threading.Thread(
        target=_watchdog, args=(beat, loop_thread, period + warn_s, stop), daemon=True
    )
    dog.start()
    try:
        while True:
            asked = time.perf_counter()
            beat[0] = asked
            await asyncio.sleep(period)
            late = time.perf_counter() - asked - period
            LAG.observe(max(late, 0.0))
            if late > warn_s:
                log.warning("the event loop was blocked for %.0f ms", late * 1000)
    finally:
        stop.set()


def _watchdog(beat: list[float], loop_thread: int, limit: float, stop: threading.Event) -> None:
    reported = 0.0
    while not stop.wait(limit / 4):
        last = beat[0]
        if time.perf_counter() - last > limit and last != reported:
            reported = last  # one stack per stall
            frame = sys._current_frames().get(loop_thread)
            if frame is not None:
                log.warning("the event loop is blocked; it is at:\n%s", _where(frame))


def _where(frame: FrameType) -> str:
    """The stack: Sigap's own frames, and the innermost few (inside a library)."""
    entries = traceback.extract_stack(frame)
    own = [e for e in entries[:-4] if "site-packages" not in e.filename]
    return "".join(traceback.format_list([*own[-12:], *entries[-4:]]))
