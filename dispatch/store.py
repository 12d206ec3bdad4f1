"""Alerts in SQL: applies rule events with the one-active-alert-per-(device, kind) guarantee."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.timeutil import from_ms
from dispatch.model import AUTO_RESOLVE_PREFIXES, AlertChange, AlertPublic, AlertStatus, ChangeType
from dispatch.tables import AlertEventRow, AlertRow
from rules.events import Action, AlertEvent

ActiveAlerts = dict[tuple[str, str], AlertRow]


class AlertStore:
    """Alert records and their change log in SQL."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def apply(self, events: Sequence[AlertEvent]) -> list[AlertChange]:
        """Apply rule events in one transaction; duplicates and stale clears change nothing."""
        if not events:
            return []
        keys = {(e.device_id, e.kind) for e in events}
        async with self._sessions() as session, session.begin():
            rows = await session.scalars(
                select(AlertRow).where(
                    AlertRow.resolved_at.is_(None),
                    tuple_(AlertRow.device_id, AlertRow.kind).in_(keys),
                )
            )
            active: ActiveAlerts = {(row.device_id, row.kind): row for row in rows}
            log: list[AlertEventRow] = []
            for event in events:
                changed = await _apply_one(session, active, event)
                if changed is not None:
                    change, row = changed
                    # Snapshot now: one alert may change twice within a batch.
                    log.append(
                        AlertEventRow(
                            alert_id=row.id,
                            type=change.value,
                            at=from_ms(event.ts_ms),
                            snapshot=AlertPublic.model_validate(row).model_dump(mode="json"),
                        )
                    )
            session.add_all(log)
            await session.flush()
            return [_change(entry) for entry in log]

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

    async def changes_after(self, event_id: int, limit: int = 1000) -> list[AlertChange]:
        """The change log after an event id, oldest first (SSE resume)."""
        query = (
            select(AlertEventRow)
            .where(AlertEventRow.id > event_id)
            .order_by(AlertEventRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_change(entry) for entry in await session.scalars(query)]


def _change(entry: AlertEventRow) -> AlertChange:
    return AlertChange(
        event_id=entry.id,
        type=ChangeType(entry.type),
        alert=AlertPublic.model_validate(entry.snapshot),
    )


async def _apply_one(
    session: AsyncSession, active: ActiveAlerts, event: AlertEvent
) -> tuple[ChangeType, AlertRow] | None:
    key = (event.device_id, event.kind)
    row = active.get(key)
    at = from_ms(event.ts_ms)
    if event.action is Action.raise_:
        if row is None:
            row = AlertRow(
                kind=event.kind,
                category=event.kind.split(".", 1)[0],
                device_id=event.device_id,
                status=AlertStatus.open.value,
                severity=event.severity.value,
                reason=event.reason,
                raised_at=at,
                updated_at=at,
                values=dict(event.values),
            )
            session.add(row)
            await session.flush()  # assigns the id the change log refers to
            active[key] = row
            return ChangeType.raised, row
        if row.cleared_at is None:
            return None  # already active: a duplicate or a repeat, not a second alert
        row.cleared_at = None
        row.updated_at = at
        row.reason = event.reason
        row.values = dict(event.values)
        return ChangeType.updated, row
    if row is None or row.cleared_at is not None:
        return None  # nothing active to clear
    row.cleared_at = at
    row.updated_at = at
    if event.kind.startswith(AUTO_RESOLVE_PREFIXES):
        row.status = AlertStatus.resolved.value
        row.resolved_at = at
        del active[key]
    return ChangeType.cleared, row
