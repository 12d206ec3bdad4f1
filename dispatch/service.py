"""Alert service: persists rule events and people's actions, then notifies every channel."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from prometheus_client import Counter

from dispatch.broadcast import AlertBroadcaster
from dispatch.model import AlertChange, AlertStatus
from dispatch.store import AlertStore
from rules.events import AlertEvent

log = logging.getLogger(__name__)

ALERT_CHANGES = Counter("sigap_alert_changes_total", "Alert changes", ["kind", "type"])

# A channel that takes committed changes (the MQTT alert topic); it must not block.
Sink = Callable[[Sequence[AlertChange]], None]


class AlertService:
    """The one entry point into dispatch, for rule events and for people's actions."""

    def __init__(
        self, store: AlertStore, broadcaster: AlertBroadcaster, sinks: Sequence[Sink] = ()
    ) -> None:
        self.store = store
        self.broadcaster = broadcaster
        self.sinks = list(sinks)

    def _publish(self, changes: Sequence[AlertChange]) -> None:
        for change in changes:
            ALERT_CHANGES.labels(change.alert.kind, change.type.value).inc()
            log.info(
                "alert %s %s #%d %s: %s",
                change.alert.kind,
                change.type.value,
                change.alert.id,
                change.alert.device_id,
                change.alert.reason,
            )
        self.broadcaster.publish(changes)
        for sink in self.sinks:
            try:
                sink(changes)
            except Exception:  # one broken channel must not silence the others
                log.exception("alert sink %r failed", sink)

    async def apply(self, events: Sequence[AlertEvent]) -> list[AlertChange]:
        """Store the events' effects, then publish the resulting changes."""
        changes = await self.store.apply(events)
        self._publish(changes)
        return changes

    async def act(
        self,
        alert_id: int,
        action: str,
        by: str,
        *,
        station_id: str | None = None,
        outcome: AlertStatus | None = None,
        note: str | None = None,
    ) -> AlertChange:
        """A person acknowledges, dispatches or resolves an alert."""
        change = await self.store.act(
            alert_id, action, by, station_id=station_id, outcome=outcome, note=note
        )
        self._publish([change])
        return change

    async def escalate(self, after_s: float) -> list[AlertChange]:
        """Escalate unacknowledged fire alerts (the scheduler calls this)."""
        changes = await self.store.escalate_due(after_s)
        self._publish(changes)
        return changes
