"""Alert service: persists rule events, then notifies live subscribers."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import Counter

from dispatch.broadcast import AlertBroadcaster
from dispatch.model import AlertChange
from dispatch.store import AlertStore
from rules.events import AlertEvent

log = logging.getLogger(__name__)

ALERT_CHANGES = Counter("sigap_alert_changes_total", "Alert changes", ["kind", "type"])


class AlertService:
    """The one entry point for rule events into dispatch."""

    def __init__(self, store: AlertStore, broadcaster: AlertBroadcaster) -> None:
        self.store = store
        self.broadcaster = broadcaster

    async def apply(self, events: Sequence[AlertEvent]) -> list[AlertChange]:
        """Store the events' effects, then publish the resulting changes."""
        changes = await self.store.apply(events)
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
        return changes
