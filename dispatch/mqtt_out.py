"""Alert changes out over MQTT, on sigap/alerts/{category}/{device_id}, for MQTT consoles."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiomqtt

from contract import topics
from dispatch.model import AlertChange

log = logging.getLogger(__name__)


def alert_topic(change: AlertChange) -> str:
    """The topic of one alert change."""
    return topics.alert_topic(change.alert.category, change.alert.device_id)


class MqttAlertPublisher:
    """Publishes alert changes at QoS 1, reconnecting as needed.

    The queue is bounded: if the broker is away for long, the oldest changes are dropped
    (and counted) rather than growing memory; the database, the SSE stream (with resume)
    and the webhook outbox still have every change.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "sigap-alerts",
        max_queued: int = 10_000,
    ) -> None:
        self.host, self.port = host, port
        self._username, self._password = username, password
        self._client_id = client_id
        self._queue: asyncio.Queue[AlertChange] = asyncio.Queue(max_queued)
        self._current: AlertChange | None = None  # taken but not yet acknowledged
        self.published = 0
        self.dropped = 0

    def __call__(self, changes: Sequence[AlertChange]) -> None:
        """Queue changes for publishing (a Sink for AlertService)."""
        for change in changes:
            if self._queue.full():
                self._queue.get_nowait()
                self.dropped += 1
            self._queue.put_nowait(change)

    async def run(self) -> None:
        """Publish forever; cancel to stop."""
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self._client_id,
                    username=self._username,
                    password=self._password,
                ) as client:
                    delay = 0.5
                    while True:
                        change = await self._queue.get()
                        await client.publish(
                            alert_topic(change), change.model_dump_json().encode(), qos=1
                        )
                        self.published += 1
            except aiomqtt.MqttError as exc:
                log.warning("alert MQTT publisher: %s; reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
