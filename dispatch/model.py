"""The alert record and its changes, as every output (API, SSE, MQTT, webhooks) shows them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class AlertStatus(StrEnum):
    """Lifecycle of an alert: open -> acknowledged -> dispatched -> a closing outcome."""

    open = "open"
    acknowledged = "acknowledged"
    dispatched = "dispatched"
    resolved = "resolved"
    cancelled = "cancelled"
    false_alarm = "false_alarm"


ACTIVE_STATUSES = frozenset({AlertStatus.open, AlertStatus.acknowledged, AlertStatus.dispatched})
OUTCOMES = frozenset({AlertStatus.resolved, AlertStatus.cancelled, AlertStatus.false_alarm})


class ChangeType(StrEnum):
    """What happened to an alert (the SSE `event:` name is `alert.<type>`)."""

    raised = "raised"  # a new alert
    updated = "updated"  # the condition came back while the alert was still active
    cleared = "cleared"  # the condition ended; fire alerts stay active until people resolve them
    acknowledged = "acknowledged"  # a person has seen it
    dispatched = "dispatched"  # a station was sent
    escalated = "escalated"  # nobody acknowledged in time: notified again, next station
    resolved = "resolved"  # closed by a person (status says the outcome)


# Fire alerts (category fire, bin fires included) stay active when the condition ends,
# until a person resolves them; the others close by themselves (an emptied bin needs no
# dispatcher).
STAYS_UNTIL_RESOLVED = frozenset({"fire"})


class AlertPublic(BaseModel):
    """An alert as the API and every notification channel show it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    slot: str
    kind: str
    category: str
    device_id: str
    status: AlertStatus
    severity: str
    reason: str
    raised_at: datetime  # event time of the reading that raised it
    updated_at: datetime
    cleared_at: datetime | None = None  # when the condition ended (event time)
    resolved_at: datetime | None = None
    values: dict[str, Any] = {}
    incident_id: int | None = None
    proposed_stations: list[str] = []  # nearest fire stations first
    escalation_level: int = 0
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    dispatched_at: datetime | None = None
    dispatched_by: str | None = None
    station_id: str | None = None
    resolved_by: str | None = None


class IncidentPublic(BaseModel):
    """A group of fire alerts that confirm one fire."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    zone: str | None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    alert_ids: list[int] = []
    device_ids: list[str] = []


class AlertActionPublic(BaseModel):
    """One entry of an alert's audit trail: who did what, and when."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    alert_id: int
    action: str
    by: str
    at: datetime
    details: dict[str, Any] = {}


class AlertChange(BaseModel):
    """One change of one alert; `event_id` orders changes and lets SSE clients resume."""

    event_id: int
    type: ChangeType
    alert: AlertPublic
