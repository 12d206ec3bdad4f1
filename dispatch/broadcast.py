"""Fan-out of alert changes to live subscribers (SSE consoles), with bounded queues."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from dispatch.model import AlertChange

log = logging.getLogger(__name__)

_RECENT = 100_000


class Subscription:
    """One subscriber's queue; `lagged` is set if it fell too far behind and was cut off."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[AlertChange | None] = asyncio.Queue(size)
        self.lagged = False


class AlertBroadcaster:
    """Publishes alert changes to every current subscriber.

    A subscriber that does not keep up is cut off (its stream ends) rather than slowing
    everyone or growing memory; a console reconnects with Last-Event-ID and catches up
    from the change log.
    """

    def __init__(self, queue_size: int = 10_000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        # Event ids published lately. With several ingest workers a change can reach us
        # twice, committed here and read back by the change feed (dispatch/feed.py) in
        # the moment between the commit and its publication; it goes out once.
        self._recent: deque[int] = deque(maxlen=_RECENT)
        self._recent_ids: set[int] = set()

    def published(self, event_id: int) -> bool:
        """True when this change was published lately."""
        return event_id in self._recent_ids

    @property
    def subscribers(self) -> int:
        """How many subscribers are connected."""
        return len(self._subscribers)

    def publish(self, changes: Sequence[AlertChange]) -> None:
        """Queue changes for every subscriber (never blocks); a change already published
        is skipped."""
        fresh = [c for c in changes if c.event_id not in self._recent_ids]
        for change in fresh:
            if len(self._recent) == _RECENT:
                self._recent_ids.discard(self._recent[0])
            self._recent.append(change.event_id)
            self._recent_ids.add(change.event_id)
        changes = fresh
        for sub in list(self._subscribers):
            for change in changes:
                try:
                    sub.queue.put_nowait(change)
                except asyncio.QueueFull:
                    log.warning("alert subscriber lagging; closing its stream")
                    sub.lagged = True
                    self._subscribers.discard(sub)
                    self._close(sub)
                    break

    @staticmethod
    def _close(sub: Subscription) -> None:
        # Make room for the end marker so the reader wakes up and ends.
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the block; None in the queue means the end."""
        sub = Subscription(self._queue_size)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close_all(self) -> None:
        """End every stream (shutdown)."""
        for sub in list(self._subscribers):
            self._close(sub)
        self._subscribers.clear()
