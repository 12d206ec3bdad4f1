"""Fan-out of alert changes to live subscribers (SSE consoles), with bounded backlogs.

A wall of consoles is normal load (issue #22): each change is encoded as its SSE event
once, however many subscribers there are, and a publish costs one append per subscriber
however many changes it carries. The frames of one publish are joined into one
bytes object once, which every subscriber writes as it is: a burst reaches each console
as a few large writes rather than thousands of small ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from dispatch.model import AlertChange, AlertPublic, ChangeType

log = logging.getLogger(__name__)

_RECENT = 100_000
_FRAMES_KEPT = 10_000  # about 7 MB of encoded alerts

STREAMS = Gauge("sigap_alert_streams", "Live alert streams (SSE subscribers)")
STREAMS_REFUSED = Counter(
    "sigap_alert_streams_refused_total", "Alert streams refused: the stream cap was reached"
)
STREAMS_CUT = Counter(
    "sigap_alert_streams_cut_total", "Alert streams ended because their client fell behind"
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One alert change as an SSE event, encoded once for every subscriber."""

    event_id: int
    data: bytes


def encode(change: AlertChange) -> Frame:
    """The change as an SSE event: `id`, `event: alert.<type>` and the alert as JSON."""
    # model_dump_json has no line breaks, so the alert is one `data:` line.
    text = (
        f"id: {change.event_id}\r\nevent: alert.{change.type.value}\r\n"
        f"data: {change.alert.model_dump_json()}\r\n\r\n"
    )
    return Frame(change.event_id, text.encode())


class Batch:
    """The frames of one publish, and (made once, on first use) all of them as one write."""

    __slots__ = ("_data", "frames", "lowest")

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.frames = frames
        self.lowest = min(frame.event_id for frame in frames)
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        """Every frame, in order, as one bytes object shared by every subscriber."""
        if self._data is None:
            self._data = b"".join(frame.data for frame in self.frames)
        return self._data


class Subscription:
    """One subscriber's backlog of batches, bounded; `lagged` once it was cut off for it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit  # changes waiting, at most
        self._waiting: deque[Batch] = deque()
        self._count = 0
        self._wake = asyncio.Event()
        self.closed = False
        self.lagged = False

    def offer(self, batch: Batch) -> bool:
        """Queue a batch; False (and the subscription ends) when that passes the limit."""
        if self.closed:
            return False
        if self._count + len(batch.frames) > self._limit:
            self.lagged = True
            self.close()
            return False
        self._waiting.append(batch)
        self._count += len(batch.frames)
        self._wake.set()
        return True

    def close(self) -> None:
        """End the subscription: what the reader has not taken yet is dropped."""
        self.closed = True
        self._waiting.clear()
        self._count = 0
        self._wake.set()

    def take(self) -> list[Batch]:
        """Everything waiting, oldest first, without waiting (empty if nothing is)."""
        batches = list(self._waiting)
        self._waiting.clear()
        self._count = 0
        self._wake.clear()
        return batches

    async def next(self) -> list[Batch] | None:
        """Everything waiting once there is something; None when the subscription ended."""
        while not self._waiting:
            if self.closed:
                return None
            await self._wake.wait()
            self._wake.clear()
        return self.take()


class AlertBroadcaster:
    """Publishes alert changes to every current subscriber.

    A subscriber that does not keep up is cut off (its stream ends) rather than slowing
    everyone or growing memory; a console reconnects with Last-Event-ID and catches up
    from the change log. At most `max_subscribers` subscribe at once.
    """

    def __init__(
        self, queue_size: int = 10_000, max_subscribers: int = 500, replay_concurrency: int = 4
    ) -> None:
        self._queue_size = queue_size
        self.max_subscribers = max_subscribers
        # Streams resuming from Last-Event-ID read the change log this many at a time: a
        # wall of consoles reconnecting at once would otherwise take every pooled SQL
        # connection and leave other requests to time out (the 500s of issue #22).
        self.replays = asyncio.Semaphore(replay_concurrency)
        self._subscribers: set[Subscription] = set()
        # Event ids published lately. With several ingest workers a change can reach us
        # twice, committed here and read back by the change feed (dispatch/feed.py) in
        # the moment between the commit and its publication; it goes out once.
        self._recent: deque[int] = deque(maxlen=_RECENT)
        self._recent_ids: set[int] = set()
        # The newest frames by event id: consoles resuming after a blip ask for these,
        # often many at once, and find them encoded.
        self._frames: dict[int, Frame] = {}

    def published(self, event_id: int) -> bool:
        """True when this change was published lately."""
        return event_id in self._recent_ids

    @property
    def subscribers(self) -> int:
        """How many subscribers are connected."""
        return len(self._subscribers)

    @property
    def full(self) -> bool:
        """True when no one else may subscribe now."""
        return len(self._subscribers) >= self.max_subscribers

    def publish(self, changes: Sequence[AlertChange]) -> None:
        """Queue changes for every subscriber (never blocks); a change already published
        is skipped."""
        fresh = [c for c in changes if c.event_id not in self._recent_ids]
        for change in fresh:
            if len(self._recent) == _RECENT:
                self._recent_ids.discard(self._recent[0])
            self._recent.append(change.event_id)
            self._recent_ids.add(change.event_id)
        if not fresh or not self._subscribers:
            return
        batch = Batch([self.frame(change) for change in fresh])
        for sub in list(self._subscribers):
            if not sub.offer(batch):
                log.warning("alert subscriber lagging; closing its stream")
                STREAMS_CUT.inc()
                self._subscribers.discard(sub)
                STREAMS.set(len(self._subscribers))

    def frame(self, change: AlertChange) -> Frame:
        """The change's SSE event, encoded once while it is among the newest."""
        found = self._frames.get(change.event_id)
        if found is None:
            found = self._frames[change.event_id] = encode(change)
            if len(self._frames) > _FRAMES_KEPT:
                del self._frames[next(iter(self._frames))]  # the first kept, in order
        return found

    def logged_frame(self, event_id: int, change_type: str, alert_json: str) -> Frame:
        """A change as the log stores it, as its SSE event: the kept one if it is among the
        newest, else built from the stored alert (checked against AlertPublic)."""
        found = self._frames.get(event_id)
        if found is not None:
            return found
        alert = AlertPublic.model_validate_json(alert_json)
        return self.frame(AlertChange(event_id=event_id, type=ChangeType(change_type), alert=alert))

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the block (one that starts closed when full)."""
        sub = Subscription(self._queue_size)
        if self.full:
            # The API refuses streams past the cap with a 503 before they start; a few
            # that passed that check together end here, and their clients come back.
            STREAMS_REFUSED.inc()
            sub.close()
            yield sub
            return
        self._subscribers.add(sub)
        STREAMS.set(len(self._subscribers))
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)
            STREAMS.set(len(self._subscribers))

    def close_all(self) -> None:
        """End every stream (shutdown)."""
        for sub in list(self._subscribers):
            sub.close()
        self._subscribers.clear()
        STREAMS.set(0)
