"""Alerts in SQL: applies rule events with the one-active-alert-per-(device, kind) guarantee."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.timeutil import from_ms
from dispatch.model import (
    ACTIVE_STATUSES,
    OUTCOMES,
    STAYS_UNTIL_RESOLVED,
    AlertActionPublic,
    AlertChange,
    AlertPublic,
    AlertStatus,
    ChangeType,
    IncidentPublic,
)
from dispatch.tables import AlertActionRow, AlertEventRow, AlertRow, IncidentRow
from rules.events import Action, AlertEvent

ActiveAlerts = dict[tuple[str, str], AlertRow]
# SQLite ignores VARCHAR lengths but PostgreSQL refuses a longer string, and a refused
# event would be retried forever: a long reason (a fire confirmed by many detectors) is cut.
REASON_MAX = 1000
CONFIRMED = "fire.confirmed"
SUPERVISOR = "supervisor"

# Who may do what: action -> (statuses it applies to, status it leads to; None = outcome).
TRANSITIONS: dict[str, tuple[frozenset[AlertStatus], AlertStatus | None]] = {
    "ack": (frozenset({AlertStatus.open}), AlertStatus.acknowledged),
    "dispatch": (frozenset({AlertStatus.open, AlertStatus.acknowledged}), AlertStatus.dispatched),
    "resolve": (ACTIVE_STATUSES, None),
}

# Called inside each transaction that changes alerts (the webhook outbox), so that a
# change and its notifications commit together.
InTransaction = Callable[[AsyncSession, Sequence[AlertChange]], None]


class AlertNotFoundError(LookupError):
    """No alert with this id."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} not found")
        self.alert_id = alert_id


class TransitionError(Exception):
    """The action does not apply to the alert's current status."""

    def __init__(self, alert_id: int, action: str, status: str) -> None:
        super().__init__(f"cannot {action} alert {alert_id}: it is {status}")
        self.alert_id = alert_id
        self.action = action
        self.status = status


class AlertStore:
    """Alert records, their change log and audit trail in SQL."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        propose: Callable[[str], list[str]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        in_transaction: InTransaction | None = None,
    ) -> None:
        self._sessions = sessions
        self._propose = propose  # device id -> nearest fire stations, nearest first
        self._clock = clock
        self.in_transaction = in_transaction

    async def apply(self, events: Sequence[AlertEvent]) -> list[AlertChange]:
        """Apply rule events in one transaction; duplicates and stale clears change nothing."""
        if not events:
            return []
        keys = {(e.device_id, e.slot) for e in events}
        async with self._sessions() as session, session.begin():
            rows = await session.scalars(
                select(AlertRow).where(
                    AlertRow.resolved_at.is_(None),
                    tuple_(AlertRow.device_id, AlertRow.slot).in_(keys),
                )
            )
            active: ActiveAlerts = {(row.device_id, row.slot): row for row in rows}
            log: list[AlertEventRow] = []
            for event in events:
                changed = await _apply_one(session, active, event, self._new_fire)
                if changed is not None:
                    change, row = changed
                    if event.kind == CONFIRMED and event.action is not Action.clear:
                        await _group_incident(session, active, event, row)
                    # Snapshot now: one alert may change twice within a batch.
                    log.append(
                        AlertEventRow(
                            alert_id=row.id,
                            type=change.value,
                            at=from_ms(event.ts_ms),
                            snapshot=AlertPublic.model_validate(row).model_dump(mode="json"),
                        )
                    )
            return await self._log(session, log)

    async def _log(self, session: AsyncSession, log: list[AlertEventRow]) -> list[AlertChange]:
        session.add_all(log)
        await session.flush()
        changes = [_change(entry) for entry in log]
        if self.in_transaction is not None and changes:
            self.in_transaction(session, changes)
        return changes

    def _new_fire(self, row: AlertRow) -> None:
        """A new fire alert: propose the nearest stations and start its escalation timer."""
        row.notified_at = self._clock()
        if self._propose is not None:
            row.proposed_stations = self._propose(row.device_id)

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
        """Acknowledge, dispatch or resolve an alert, recording who and when."""
        allowed, target = TRANSITIONS[action]
        now = self._clock()
        async with self._sessions() as session, session.begin():
            row = await session.get(AlertRow, alert_id, with_for_update=True)
            if row is None:
                raise AlertNotFoundError(alert_id)
            if row.status not in allowed:
                raise TransitionError(alert_id, action, row.status)
            details: dict[str, Any] = {"note": note} if note else {}
            if action == "ack":
                row.status = AlertStatus.acknowledged.value
                row.acknowledged_at, row.acknowledged_by = now, by
                change = ChangeType.acknowledged
            elif action == "dispatch":
                station = station_id or _current_station(row)
                if station is None or station == SUPERVISOR:
                    raise ValueError("no station to dispatch to: give station_id")
                if row.acknowledged_at is None:  # sending a crew means someone saw it
                    row.acknowledged_at, row.acknowledged_by = now, by
                row.status = AlertStatus.dispatched.value
                row.dispatched_at, row.dispatched_by, row.station_id = now, by, station
                details["station_id"] = station
                change = ChangeType.dispatched
            else:
                closing = outcome or AlertStatus.resolved
                if closing not in OUTCOMES:
                    raise ValueError(f"outcome must be one of {sorted(o.value for o in OUTCOMES)}")
                row.status = closing.value
                row.resolved_at, row.resolved_by = now, by
                details["outcome"] = closing.value
                change = ChangeType.resolved
            assert target is None or row.status == target.value
            row.updated_at = max(row.updated_at, now)
            session.add(
                AlertActionRow(alert_id=row.id, action=action, by=by, at=now, details=details)
            )
            entry = AlertEventRow(
                alert_id=row.id,
                type=change.value,
                at=now,
                snapshot=AlertPublic.model_validate(row).model_dump(mode="json"),
            )
            return (await self._log(session, [entry]))[0]

    async def escalate_due(self, after_s: float) -> list[AlertChange]:
        """Escalate fire alerts nobody acknowledged within `after_s` of their last notice.

        Everything needed is in the alert table, so escalation carries on after a restart.
        """
        now = self._clock()
        due = now - timedelta(seconds=after_s)
        async with self._sessions() as session, session.begin():
            rows = await session.scalars(
                select(AlertRow).where(
                    AlertRow.status == AlertStatus.open.value,
                    AlertRow.category.in_(STAYS_UNTIL_RESOLVED),
                    AlertRow.notified_at <= due,
                )
            )
            log = []
            for row in rows:
                row.escalation_level += 1
                row.notified_at = now
                to = _current_station(row) or SUPERVISOR
                session.add(
                    AlertActionRow(
                        alert_id=row.id,
                        action="escalate",
                        by="sigap",
                        at=now,
                        details={"level": row.escalation_level, "to": to, "after_s": after_s},
                    )
                )
                log.append(
                    AlertEventRow(
                        alert_id=row.id,
                        type=ChangeType.escalated.value,
                        at=now,
                        snapshot=AlertPublic.model_validate(row).model_dump(mode="json"),
                    )
                )
            return await self._log(session, log)

    async def history(self, alert_id: int) -> list[AlertChange]:
        """An alert's change log, oldest first (what CAP references are built from)."""
        return (await self.histories([alert_id])).get(alert_id, [])

    async def histories(self, alert_ids: Sequence[int]) -> dict[int, list[AlertChange]]:
        """Several alerts' change logs in one query, each oldest first."""
        found: dict[int, list[AlertChange]] = {}
        if not alert_ids:
            return found
        async with self._sessions() as session:
            rows = await session.scalars(
                select(AlertEventRow)
                .where(AlertEventRow.alert_id.in_(alert_ids))
                .order_by(AlertEventRow.id)
            )
            for entry in rows:
                found.setdefault(entry.alert_id, []).append(_change(entry))
        return found

    async def actions(self, alert_id: int) -> list[AlertActionPublic]:
        """An alert's audit trail, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(AlertActionRow)
                .where(AlertActionRow.alert_id == alert_id)
                .order_by(AlertActionRow.id)
            )
            return [AlertActionPublic.model_validate(row) for row in rows]

    async def get(self, alert_id: int) -> AlertPublic | None:
        """One alert, or None."""
        async with self._sessions() as session:
            row = await session.get(AlertRow, alert_id)
            return AlertPublic.model_validate(row) if row else None

    async def find(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        category: str | None = None,
        device_id: str | None = None,
        active: bool | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AlertPublic]:
        """Newest first, filtered."""
        query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit).offset(offset)
        if status:
            query = query.where(AlertRow.status == status)
        if kind:
            query = query.where(AlertRow.kind == kind)
        if category:
            query = query.where(AlertRow.category == category)
        if device_id:
            query = query.where(AlertRow.device_id == device_id)
        if active is not None:
            query = query.where(
                AlertRow.resolved_at.is_(None) if active else AlertRow.resolved_at.is_not(None)
            )
        if since:
            query = query.where(AlertRow.raised_at >= since)
        async with self._sessions() as session:
            return [AlertPublic.model_validate(row) for row in await session.scalars(query)]

    async def active(self) -> list[AlertPublic]:
        """Every unresolved alert (to seed the rule engine after a restart)."""
        return await self.find(active=True, limit=1_000_000)

    async def incidents(
        self, *, active: bool | None = None, limit: int = 100, incident_id: int | None = None
    ) -> list[IncidentPublic]:
        """Incidents, newest first, with their alerts."""
        query = select(IncidentRow).order_by(IncidentRow.id.desc()).limit(limit)
        if incident_id is not None:
            query = query.where(IncidentRow.id == incident_id)
        if active is not None:
            query = query.where(
                IncidentRow.resolved_at.is_(None)
                if active
                else IncidentRow.resolved_at.is_not(None)
            )
        async with self._sessions() as session:
            rows = list(await session.scalars(query))
            members = await session.execute(
                select(AlertRow.incident_id, AlertRow.id, AlertRow.device_id)
                .where(AlertRow.incident_id.in_([r.id for r in rows]))
                .order_by(AlertRow.id)
            )
            by_incident: dict[int, list[tuple[int, str]]] = {}
            for incident_id, alert_id, device_id in members:
                if incident_id is not None:
                    by_incident.setdefault(incident_id, []).append((alert_id, device_id))
        return [
            IncidentPublic(
                id=r.id,
                kind=r.kind,
                status=r.status,
                zone=r.zone,
                opened_at=r.opened_at,
                updated_at=r.updated_at,
                resolved_at=r.resolved_at,
                alert_ids=[a for a, _ in by_incident.get(r.id, [])],
                device_ids=[d for _, d in by_incident.get(r.id, [])],
            )
            for r in rows
        ]

    async def incident(self, incident_id: int) -> IncidentPublic | None:
        """One incident, or None."""
        found = await self.incidents(incident_id=incident_id, limit=1)
        return found[0] if found else None

    async def latest_event_id(self) -> int:
        """The newest change's event id (0 when there is none)."""
        async with self._sessions() as session:
            latest = await session.scalar(select(func.max(AlertEventRow.id)))
        return int(latest or 0)

    async def log_after(self, event_id: int, limit: int = 1000) -> list[tuple[int, str, str]]:
        """The change log after an event id as stored, oldest first: (id, type, the alert's
        JSON text). For SSE resumes, which mostly find the changes encoded already."""
        # The snapshot as text: parsing it is left to the few that need it.
        query = (
            # A cast in SQL: PostgreSQL's driver would hand back a JSON column parsed.
            select(AlertEventRow.id, AlertEventRow.type, cast(AlertEventRow.snapshot, Text))
            .where(AlertEventRow.id > event_id)
            .order_by(AlertEventRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [(int(row_id), str(type_), str(text)) for row_id, type_, text in rows]

    async def changes_after(self, event_id: int, limit: int = 1000) -> list[AlertChange]:
        """The change log after an event id, oldest first, as changes (the change feed)."""
        return [
            AlertChange(
                event_id=row_id,
                type=ChangeType(change_type),
                alert=AlertPublic.model_validate_json(text),
            )
            for row_id, change_type, text in await self.log_after(event_id, limit)
        ]


def _change(entry: AlertEventRow) -> AlertChange:
    return AlertChange(
        event_id=entry.id,
        type=ChangeType(entry.type),
        alert=AlertPublic.model_validate(entry.snapshot),
    )


def _clip(reason: str) -> str:
    return reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"


def _current_station(row: AlertRow) -> str | None:
    """The station an alert is proposed to now: the next one at each escalation."""
    stations = row.proposed_stations or []
    if not stations:
        return None
    return stations[row.escalation_level] if row.escalation_level < len(stations) else SUPERVISOR


async def _apply_one(
    session: AsyncSession,
    active: ActiveAlerts,
    event: AlertEvent,
    new_fire: Callable[[AlertRow], None],
) -> tuple[ChangeType, AlertRow] | None:
    key = (event.device_id, event.slot)
    row = active.get(key)
    at = from_ms(event.ts_ms)
    if event.action is Action.clear:
        if row is None or row.cleared_at is not None:
            return None  # nothing active to clear
        row.cleared_at = at
        row.updated_at = at
        if row.category not in STAYS_UNTIL_RESOLVED:
            row.status = AlertStatus.resolved.value
            row.resolved_at = at
            del active[key]
        return ChangeType.cleared, row
    if row is None:
        # A raise, or an update whose raise this store never saw (e.g. a restored state).
        row = AlertRow(
            slot=event.slot,
            kind=event.kind,
            category=event.category,
            device_id=event.device_id,
            status=AlertStatus.open.value,
            severity=event.severity.value,
            reason=_clip(event.reason),
            raised_at=at,
            updated_at=at,
            values=dict(event.values),
            proposed_stations=[],
            escalation_level=0,
        )
        if row.category in STAYS_UNTIL_RESOLVED:
            new_fire(row)
        session.add(row)
        await session.flush()  # assigns the id the change log refers to
        active[key] = row
        return ChangeType.raised, row
    if row.cleared_at is None and event.action is Action.raise_ and row.kind == event.kind:
        return None  # already active: a duplicate or a repeat, never a second alert
    # Escalation, de-escalation or the condition coming back: the same alert, updated.
    row.cleared_at = None
    row.kind = event.kind
    row.severity = event.severity.value
    row.reason = _clip(event.reason)
    row.values = dict(event.values) or row.values
    row.updated_at = max(row.updated_at, at)
    return ChangeType.updated, row


async def _group_incident(
    session: AsyncSession, active: ActiveAlerts, event: AlertEvent, row: AlertRow
) -> None:
    """Put a confirmed fire's alert and its partners' alerts into one incident."""
    members = [row]
    for partner in event.partners:
        found = active.get((partner, event.slot))
        if found is None:
            found = await session.scalar(
                select(AlertRow).where(
                    AlertRow.device_id == partner,
                    AlertRow.slot == event.slot,
                    AlertRow.resolved_at.is_(None),
                )
            )
        if found is not None:
            active[(partner, event.slot)] = found
            members.append(found)
    incident_ids = {m.incident_id for m in members if m.incident_id is not None}
    incident: IncidentRow | None = None
    for incident_id in sorted(incident_ids):
        candidate = await session.get(IncidentRow, incident_id)
        if candidate is not None and candidate.resolved_at is None:
            incident = candidate
            break
    at = from_ms(event.ts_ms)
    if incident is None:
        incident = IncidentRow(
            kind="fire", status="open", zone=event.zone, opened_at=at, updated_at=at
        )
        session.add(incident)
        await session.flush()
    incident.updated_at = max(incident.updated_at, at)
    for member in members:
        member.incident_id = incident.id
