"""Acknowledge QoS 1 messages only once what they carried is safe.

Ingest turns off paho's automatic PUBACK. A message is acknowledged to the broker when
every part it produced (readings and rejections; a gateway batch has many) is durable:
the readings evaluated by the rules with their alert events in SQL, and stored in
InfluxDB or in the disk spool; the rejections in the rejected store. Until then the
broker keeps the message in our persistent session and sends it again after a crash or
a reconnect, so a crash loses nothing (it may repeat work, which every stage tolerates:
InfluxDB overwrites the same point, the rule engine drops duplicates, and the alert
store keeps one alert per device and slot).

The broker's in-flight window (`max_inflight_messages` in mosquitto.conf) bounds how many
unacknowledged messages we can hold, which is also what bounds ingest's memory when a
later stage falls behind.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ingest import metrics

AckFunc = Callable[[int, int], object]


class Receipt:
    """One received QoS 1 message: counts its parts that are not durable yet."""

    __slots__ = ("_tracker", "mid", "parts", "qos", "sealed")

    def __init__(self, tracker: AckTracker, mid: int, qos: int) -> None:
        self._tracker = tracker
        self.mid = mid
        self.qos = qos
        self.parts = 0
        self.sealed = False

    def add_part(self) -> None:
        """One more reading or rejection of this message is on its way."""
        self.parts += 1

    def seal(self) -> None:
        """All parts of the message are known (decoding is done)."""
        self.sealed = True
        self._tracker.release()

    def done(self) -> None:
        """One part of the message is durable."""
        self.parts -= 1
        self._tracker.release()


class AckTracker:
    """Sends each message's PUBACK once all its parts are durable, in the order received.

    MQTT 3.1.1 (4.6) asks a receiver to acknowledge QoS 1 messages in the order they came,
    so a finished message waits for the ones before it. One tracker serves one
    connection: message ids of an earlier connection mean nothing to the next one (the
    broker redelivers what we did not acknowledge), so `close` turns the tracker, and the
    receipts it gave out, into no-ops.
    """

    def __init__(self, ack: AckFunc) -> None:
        self._ack = ack
        self._order: deque[Receipt] = deque()
        self.closed = False
        # Read when /metrics is scraped, not kept up to date per message (a gauge's inc and
        # dec cost 0.6 us each): the newest connection's tracker is the one that counts (an
        # earlier one was closed, and holds nothing).
        order = self._order
        metrics.UNACKED.set_function(lambda: len(order))

    def received(self, mid: int, qos: int) -> Receipt | None:
        """Register a message; None when it needs no acknowledgement (QoS 0)."""
        if qos == 0 or self.closed:
            return None
        receipt = Receipt(self, mid, qos)
        self._order.append(receipt)
        return receipt

    @property
    def outstanding(self) -> int:
        """Messages received but not yet acknowledged."""
        return len(self._order)

    def close(self) -> None:
        """The connection is gone: forget everything (the broker will redeliver it)."""
        self.closed = True
        self._order.clear()

    def release(self) -> None:
        """Acknowledge the finished messages at the head of the line."""
        order = self._order
        while order and order[0].sealed and order[0].parts <= 0:
            receipt = order.popleft()
            self._ack(receipt.mid, receipt.qos)
