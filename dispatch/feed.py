"""Alert changes that other processes committed, tailed from the change log for SSE.

With several ingest workers (docs/deploy.md), alert events are committed by whichever
worker owns the device, but consoles stream from the process that serves the API. That
process tails the change log (alert_events, ordered by id) and hands the changes it did
not make itself to its broadcaster.

On PostgreSQL, ids come from a sequence and a transaction that took an id early may
commit after one that took a later id; a plain `id > last` cursor would skip it. So an id
that is missing below the cursor stays wanted for `gap_s` seconds (a transaction holding
it that long is not expected) before the feed gives up on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from dispatch.model import AlertChange

log = logging.getLogger(__name__)

ChangesAfter = Callable[[int, int], Awaitable[list[AlertChange]]]
Publish = Callable[[Sequence[AlertChange]], None]


class ChangeFeed:
    """Polls the change log and publishes the changes this process has not published."""

    def __init__(
        self,
        changes_after: ChangesAfter,
        publish: Publish,
        published_here: Callable[[int], bool],
        *,
        poll_s: float = 0.05,
        gap_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._changes_after = changes_after
        self._publish = publish
        self._published_here = published_here
        self.poll_s = poll_s
        self.gap_s = gap_s
        self._clock = clock
        self.cursor = 0  # the highest event id seen
        self._gaps: dict[int, float] = {}  # missing id below the cursor -> give up at

    def start_at(self, cursor: int) -> None:
        """Begin after this event id (the newest at start: history is not replayed)."""
        self.cursor = cursor

    async def poll(self) -> int:
        """One look at the change log; returns how many changes were published."""
        now = self._clock()
        self._gaps = {i: until for i, until in self._gaps.items() if until > now}
        floor = min(self._gaps, default=self.cursor + 1) - 1
        changes = await self._changes_after(floor, 1000)
        fresh: list[AlertChange] = []
        for change in changes:
            event_id = change.event_id
            if event_id > self.cursor:
                self._gaps.update(dict.fromkeys(range(self.cursor + 1, event_id), now + self.gap_s))
                self.cursor = event_id
            elif event_id in self._gaps:
                del self._gaps[event_id]
            else:
                continue  # published by an earlier poll
            if not self._published_here(event_id):
                fresh.append(change)
        if fresh:
            self._publish(fresh)
        return len(fresh)

    async def run(self) -> None:
        """Poll forever; SQL trouble is logged and retried."""
        failing = False
        while True:
            try:
                await self.poll()
                if failing:
                    log.info("alert change feed reads the change log again")
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("alert change feed cannot read the change log: %s", exc)
                failing = True
            await asyncio.sleep(self.poll_s)
